// The demo's service worker. It keeps a copy of every same-origin file the
// demo loads (the page, the library, ONNX Runtime Web, the WebAssembly and
// the model), so that after one visit the demo works with the network off.
// Requests go to the network first, so edits to the files show up on reload.
// The stored copy is returned only when the network fails. Registered with scope '/'
// so that it also controls the library's module worker in web/src/.

const CACHE = 'dualmem-demo-v1';
const LOCAL_MODEL_CACHE = 'dualmem-demo-local-models';
const DEMO_BASE = new URL('./', self.location.href);
const LOCAL_MODEL_PATH = new URL('local-model/', DEMO_BASE).pathname;

/** The page's own files; the rest is kept as the page requests it. */
const APP_SHELL = ['./', 'index.html', 'demo.js', 'i18n.js', 'plots.js', 'styles.css', 'samples/samples.json'];

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    await cache.addAll(APP_SHELL.map((path) => new URL(path, DEMO_BASE)));
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith('dualmem-demo-v') && name !== CACHE) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

/** Returns a file of a local model folder that the page put into Cache Storage, or a 404. */
async function localModelFile(request) {
  const cache = await caches.open(LOCAL_MODEL_CACHE);
  const stored = await cache.match(request, { ignoreSearch: true });
  return stored ?? new Response('not found in the local model folder\n', { status: 404, headers: { 'Content-Type': 'text/plain' } });
}

async function networkFirst(event) {
  const { request } = event;
  try {
    const response = await fetch(request);
    if (response.ok && response.status === 200) {
      const copy = response.clone();
      event.waitUntil(caches.open(CACHE).then((cache) => cache.put(request, copy)).catch(() => {}));
    }
    return response;
  } catch (error) {
    const stored = await caches.match(request, { cacheName: CACHE, ignoreVary: true });
    if (stored) return stored;
    throw error;
  }
}

self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== 'GET' || url.origin !== self.location.origin) return;
  if (event.request.headers.has('range')) return;
  if (url.pathname.startsWith(LOCAL_MODEL_PATH)) {
    event.respondWith(localModelFile(event.request));
    return;
  }
  event.respondWith(networkFirst(event));
});
