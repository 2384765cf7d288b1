// A Vite build of a minimal app that imports 'dualmem' works offline. The
// build is served from dist/ on 127.0.0.1, and Chromium aborts every request
// to another host. The app must classify a sample image in the page and in a
// worker with the label that Node gives.

import assert from 'node:assert/strict';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';

import { createClassifier } from '../../web/src/index.js';
import { browserSkipReason, launchBrowser } from './helpers/browser.js';
import { MODEL_DIR, modelSkipReason, sampleClasses, sampleImages } from './helpers/samples.js';
import { startStaticServer } from './helpers/static-server.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const APP_DIR = new URL('./vite-app/', import.meta.url);

async function listFiles(folder, prefix = '') {
  const files = [];
  for (const entry of await readdir(folder, { withFileTypes: true })) {
    if (entry.isDirectory()) files.push(...await listFiles(join(folder, entry.name), `${prefix}${entry.name}/`));
    else files.push(`${prefix}${entry.name}`);
  }
  return files;
}

describe('Vite build of an app importing dualmem', () => {
  let workDir;
  let distFiles;

  before(async () => {
    workDir = await mkdtemp(join(tmpdir(), 'dualmem-vite-'));
    await cp(fileURLToPath(APP_DIR), workDir, { recursive: true });
    // The app resolves 'dualmem' as an installed package would be.
    await mkdir(join(workDir, 'node_modules'));
    await symlink(REPO_ROOT, join(workDir, 'node_modules', 'dualmem'), 'dir');
    if (!modelSkipReason()) {
      await cp(fileURLToPath(MODEL_DIR), join(workDir, 'public', 'models', 'tiny-clip'), { recursive: true });
      await cp(sampleImages(1)[0].path, join(workDir, 'public', 'sample.png'));
    }
    const { build } = await import('vite');
    await build({
      root: workDir,
      configFile: false,
      logLevel: 'warn',
      build: { outDir: join(workDir, 'dist'), emptyOutDir: true },
      worker: { format: 'es' },
    });
    distFiles = await listFiles(join(workDir, 'dist'));
  });

  after(async () => {
    if (workDir && !process.env.KEEP) await rm(workDir, { recursive: true, force: true });
  });

  test('dist holds the app, the worker and every WebAssembly file', () => {
    assert.ok(distFiles.includes('index.html'), distFiles.join(', '));
    const assets = distFiles.filter((file) => file.startsWith('assets/'));
    assert.ok(assets.some((file) => /^assets\/dualmem_core_simd-.*\.wasm$/.test(file)), assets.join(', '));
    assert.ok(assets.some((file) => /^assets\/ort-wasm-simd-threaded-.*\.wasm$/.test(file)), assets.join(', '));
    assert.ok(!assets.some((file) => /jsep/.test(file)), `the WebGPU build of ONNX Runtime was packed: ${assets.join(', ')}`);
    assert.ok(assets.some((file) => /^assets\/worker-.*\.js$/.test(file)), assets.join(', '));
  });

  test('dist leaves the Node-only decoder out', async () => {
    for (const file of distFiles.filter((name) => name.endsWith('.js'))) {
      const text = await readFile(join(workDir, 'dist', file), 'utf8');
      assert.ok(!text.includes('limitInputPixels'), `${file} contains the sharp decoder`);
    }
  });

  const skip = browserSkipReason() ?? modelSkipReason();
  test('built app classifies offline in the page and in a worker', { skip: skip ?? false }, async () => {
    const [sample] = sampleImages(1);
    const classes = sampleClasses();
    const reference = await createClassifier({ classes, templates: 'simple', onWarning: () => {} });
    const expected = (await reference.classify(sample.path)).label;
    await reference.dispose();

    const server = await startStaticServer(join(workDir, 'dist'));
    const browser = await launchBrowser();
    const aborted = [];
    const failed = [];
    try {
      await browser.context.route('**/*', (route) => {
        const url = new URL(route.request().url());
        if (url.hostname === '127.0.0.1') return route.continue();
        aborted.push(url.href);
        return route.abort();
      });
      browser.context.on('response', (response) => {
        if (response.status() >= 400) failed.push(`${response.status()} ${response.url()}`);
      });
      const page = await browser.context.newPage();
      await page.goto(`${server.url}index.html`);
      await page.waitForFunction(() => window.appReady === true);
      for (const worker of [false, true]) {
        const outcome = await page.evaluate((options) => window.classifySample(options), { worker, classes });
        assert.equal(outcome.error, undefined, JSON.stringify(outcome.error));
        assert.equal(outcome.label, expected, `worker ${worker}`);
      }
      assert.deepEqual(aborted, [], 'the app tried to reach another host');
      assert.deepEqual(failed, [], 'the app requested files that dist lacks');
    } finally {
      await browser.close();
      await server.close();
    }
  });
});
