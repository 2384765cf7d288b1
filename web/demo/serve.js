#!/usr/bin/env node
// Serves the demo on 127.0.0.1 with the cross-origin isolation headers that
// ONNX Runtime Web needs for threads. Only the folders the demo loads are
// served: web/ (the demo and the library), the embedded model and ONNX
// Runtime Web's dist/ folder. Everything else in the repository is 404.

import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import { extname, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** URL prefix → folder under the repository root. */
const MOUNTS = [
  ['/web/', 'web'],
  ['/models/tiny-clip/', 'models/tiny-clip'],
  ['/node_modules/onnxruntime-web/dist/', 'node_modules/onnxruntime-web/dist'],
];

export const DEMO_PATH = '/web/demo/';
const DEFAULT_PORT = 8080;

const MIME_TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.css': 'text/css; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.svg': 'image/svg+xml',
  '.onnx': 'application/octet-stream',
  '.map': 'application/json; charset=utf-8',
};

const ISOLATION_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'X-Content-Type-Options': 'nosniff',
};

/**
 * Maps a request URL to a file, or returns null when the path is malformed,
 * outside every mount or leaves its mount through `..` or an encoded slash.
 */
export function resolveRequestPath(requestUrl, root = REPO_ROOT) {
  let pathname;
  try {
    pathname = decodeURIComponent(new URL(requestUrl, 'http://127.0.0.1').pathname);
  } catch {
    return null;
  }
  if (pathname.includes('\0') || pathname.includes('\\')) return null;
  if (pathname.endsWith('/')) pathname += 'index.html';

  for (const [prefix, folder] of MOUNTS) {
    if (!pathname.startsWith(prefix)) continue;
    const base = resolve(root, folder);
    const file = resolve(base, `.${pathname.slice(prefix.length - 1)}`);
    return file.startsWith(base + sep) ? file : null;
  }
  return null;
}

function reply(response, status, text, extra = {}) {
  response.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', ...ISOLATION_HEADERS, ...extra });
  response.end(text);
}

async function handle(request, response, root) {
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    reply(response, 405, `method ${request.method} is not allowed, expected GET or HEAD\n`, { Allow: 'GET, HEAD' });
    return;
  }
  const { pathname } = new URL(request.url, 'http://127.0.0.1');
  if (pathname === '/' || pathname === '/web/demo') {
    reply(response, 302, `the demo is at ${DEMO_PATH}\n`, { Location: DEMO_PATH });
    return;
  }
  const file = resolveRequestPath(request.url, root);
  const info = file === null ? null : await stat(file).catch(() => null);
  if (!info?.isFile()) {
    reply(response, 404, 'not found\n');
    return;
  }

  const headers = {
    'Content-Type': MIME_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream',
    'Content-Length': info.size,
    // The service worker keeps its own copies for offline use. no-cache makes
    // the browser revalidate, so edits show up on reload.
    'Cache-Control': 'no-cache',
    ...ISOLATION_HEADERS,
  };
  // The demo's service worker lives in web/demo/ but must also control the
  // library's module worker in web/src/, so it registers with scope '/'.
  if (pathname === `${DEMO_PATH}sw.js`) headers['Service-Worker-Allowed'] = '/';
  response.writeHead(200, headers);
  if (request.method === 'HEAD') {
    response.end();
    return;
  }
  createReadStream(file).on('error', () => response.destroy()).pipe(response);
}

function listen(server, port, host) {
  return new Promise((done, fail) => {
    server.once('error', fail);
    server.listen(port, host, () => {
      server.off('error', fail);
      done();
    });
  });
}

/**
 * Starts the demo server.
 *
 * @param {{port?:number, host?:string, root?:string}} [options] `port` 0
 *   picks a free port; a busy non-zero port falls back to a free one
 * @returns {Promise<{url:string, close:() => Promise<void>}>} `url` is the demo page
 */
export async function startDemoServer({ port = DEFAULT_PORT, host = '127.0.0.1', root = REPO_ROOT } = {}) {
  const server = createServer((request, response) => {
    handle(request, response, root).catch(() => {
      if (!response.headersSent) reply(response, 500, 'internal error\n');
      else response.destroy();
    });
  });
  try {
    await listen(server, port, host);
  } catch (error) {
    if (error.code !== 'EADDRINUSE') throw error;
    console.warn(`port ${port} is in use; using a free port instead`);
    await listen(server, 0, host);
  }
  return {
    url: `http://${host}:${server.address().port}${DEMO_PATH}`,
    close: () => new Promise((done) => {
      server.closeAllConnections();
      server.close(() => done());
    }),
  };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const port = process.env.PORT === undefined ? DEFAULT_PORT : Number(process.env.PORT);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`PORT=${process.env.PORT} is not a port number; expected an integer from 0 to 65535`);
    process.exit(2);
  }
  const { url } = await startDemoServer({ port });
  console.log(`dualmem demo: ${url}`);
}
