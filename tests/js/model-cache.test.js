// Model downloads through Cache Storage: a file is fetched once, a corrupt
// cached copy or a short download is fetched again, and a failing store only
// warns. Runs against an in-memory Cache Storage and a scripted fetch.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { sha256Hex } from '../../web/src/digest.js';
import {
  DOWNLOAD_ATTEMPTS, MANIFEST_CACHE_NAME, MODEL_CACHE_NAME, clearModelCache, createModelFetch, openModelCache,
  responseBytes, verifiedSha256,
} from '../../web/src/model-cache.js';
import { readModelBytes } from '../../web/src/model-files.js';

const BASE = new URL('https://models.example/tiny-clip/');
const FILE_URL = new URL('onnx/text_model_quantized.onnx', BASE).href;
const FILE_BYTES = Uint8Array.from({ length: 50000 }, (_, i) => (i * 31 + 7) & 0xff);

/** An in-memory Cache keyed by URL; `failPut` makes put reject like a full quota. */
class MemoryCache {
  entries = new Map();
  failPut = false;

  async match(url) {
    const entry = this.entries.get(String(url));
    return entry ? new Response(entry.bytes, { headers: entry.headers }) : undefined;
  }

  async put(url, response) {
    if (this.failPut) throw new DOMException('quota exceeded', 'QuotaExceededError');
    const bytes = new Uint8Array(await response.arrayBuffer());
    this.entries.set(String(url), { bytes, headers: Object.fromEntries(response.headers) });
  }

  async delete(url) {
    return this.entries.delete(String(url));
  }
}

class MemoryCacheStorage {
  caches = new Map();

  async open(name) {
    if (!this.caches.has(name)) this.caches.set(name, new MemoryCache());
    return this.caches.get(name);
  }

  async delete(name) {
    return this.caches.delete(name);
  }
}

/** Builds a fetch that serves FILE_BYTES and cuts the first `shortResponses` bodies in half. */
function scriptedFetch({ shortResponses = 0 } = {}) {
  const calls = [];
  const fetchFunction = async (url) => {
    calls.push(url);
    const short = calls.length <= shortResponses;
    const body = short ? FILE_BYTES.slice(0, FILE_BYTES.length / 2) : FILE_BYTES;
    return new Response(body, {
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(FILE_BYTES.length) },
    });
  };
  return { fetchFunction, calls };
}

async function setUp(fetchOptions) {
  const storage = new MemoryCacheStorage();
  const store = await openModelCache('auto', { caches: storage });
  const warnings = [];
  const progress = [];
  const network = scriptedFetch(fetchOptions);
  const fetchModel = createModelFetch({
    store, base: BASE, fetch: network.fetchFunction,
    onProgress: (detail) => progress.push(detail),
    onStorageWarning: (message) => warnings.push(message),
  });
  return { storage, store, warnings, progress, network, fetchModel };
}

async function bytesOf(response) {
  return new Uint8Array(await response.arrayBuffer());
}

describe('model cache', () => {
  test('downloads a file once, then serves it from the cache', async () => {
    const { network, fetchModel, progress } = await setUp();
    assert.deepEqual(await bytesOf(await fetchModel(FILE_URL)), FILE_BYTES);
    assert.deepEqual(await bytesOf(await fetchModel(FILE_URL)), FILE_BYTES);
    assert.equal(network.calls.length, 1, 'the second read went to the network');
    assert.equal(progress.at(-1).file, 'onnx/text_model_quantized.onnx');
    assert.equal(progress.at(-1).loaded, FILE_BYTES.length);
    assert.equal(progress.at(-1).total, FILE_BYTES.length);
  });

  test('manifest stores size and SHA-256', async () => {
    const { storage, fetchModel } = await setUp();
    await fetchModel(FILE_URL);
    const manifest = await (await (await storage.open(MANIFEST_CACHE_NAME)).match(FILE_URL)).json();
    assert.equal(manifest.size, FILE_BYTES.length);
    assert.equal(manifest.sha256, await sha256Hex(FILE_BYTES));
  });

  test('downloads and cached copies report their SHA-256', async () => {
    const { fetchModel } = await setUp();
    const expected = await sha256Hex(FILE_BYTES);
    assert.equal(verifiedSha256(await fetchModel(FILE_URL)), expected, 'download');
    const digest = globalThis.crypto.subtle.digest;
    let hashed = 0;
    globalThis.crypto.subtle.digest = function countedDigest(...args) {
      hashed += 1;
      return digest.apply(this, args);
    };
    try {
      assert.equal(verifiedSha256(await fetchModel(FILE_URL)), expected, 'cached copy');
    } finally {
      globalThis.crypto.subtle.digest = digest;
    }
    assert.equal(hashed, 1, 'reading a cached copy hashed it more than once');
  });

  test('a cached file reaches readModelBytes as the bytes that were checked', async () => {
    const { fetchModel, progress } = await setUp();
    await fetchModel(FILE_URL);
    const response = await fetchModel(FILE_URL);
    assert.deepEqual(responseBytes(response), FILE_BYTES);
    // The body stays readable for other callers and gives the same bytes.
    assert.deepEqual(await bytesOf(response), FILE_BYTES);

    let served = null;
    const remembering = async (url) => {
      served = await fetchModel(url);
      return served;
    };
    const before = progress.length;
    const file = await readModelBytes(BASE, 'onnx/text_model_quantized.onnx', { fetch: remembering, onProgress: (detail) => progress.push(detail) });
    assert.equal(file.bytes, responseBytes(served), 'readModelBytes copied a body it could take as it was');
    assert.equal(file.sha256, await sha256Hex(FILE_BYTES));
    assert.deepEqual(progress.slice(before).map((p) => p.loaded), [FILE_BYTES.length, FILE_BYTES.length],
      'expected one report from the cache read and one from readModelBytes');
  });

  test('downloads without a cache report no SHA-256', async () => {
    const fetchModel = createModelFetch({ store: null, base: BASE, fetch: scriptedFetch().fetchFunction });
    assert.equal(verifiedSha256(await fetchModel(FILE_URL)), null);
  });

  test('corrupt cached copy is fetched again', async () => {
    const { storage, network, fetchModel, warnings } = await setUp();
    await fetchModel(FILE_URL);
    const models = await storage.open(MODEL_CACHE_NAME);
    const corrupt = FILE_BYTES.slice();
    corrupt[1234] ^= 0xff;
    await models.put(FILE_URL, new Response(corrupt));

    assert.deepEqual(await bytesOf(await fetchModel(FILE_URL)), FILE_BYTES);
    assert.equal(network.calls.length, 2);
    assert.match(warnings.join('\n'), /cached copy of onnx\/text_model_quantized\.onnx is corrupt.*SHA-256/);
    assert.deepEqual(await bytesOf(await fetchModel(FILE_URL)), FILE_BYTES);
    assert.equal(network.calls.length, 2, 'the repaired entry was not used');
  });

  test('truncated cached copy is fetched again', async () => {
    const { storage, network, fetchModel, warnings } = await setUp();
    await fetchModel(FILE_URL);
    await (await storage.open(MODEL_CACHE_NAME)).put(FILE_URL, new Response(FILE_BYTES.slice(0, 100)));
    assert.deepEqual(await bytesOf(await fetchModel(FILE_URL)), FILE_BYTES);
    assert.equal(network.calls.length, 2);
    assert.match(warnings.join('\n'), /has 100 bytes, expected 50000/);
  });

  test('cached copy without manifest entry is fetched again', async () => {
    const { storage, network, fetchModel } = await setUp();
    await fetchModel(FILE_URL);
    await (await storage.open(MANIFEST_CACHE_NAME)).delete(FILE_URL);
    await fetchModel(FILE_URL);
    assert.equal(network.calls.length, 2);
  });

  test('short download is retried', async () => {
    const { network, fetchModel } = await setUp({ shortResponses: DOWNLOAD_ATTEMPTS - 1 });
    assert.deepEqual(await bytesOf(await fetchModel(FILE_URL)), FILE_BYTES);
    assert.equal(network.calls.length, DOWNLOAD_ATTEMPTS);
  });

  test('download short every time raises model_not_found', async () => {
    const { fetchModel, storage } = await setUp({ shortResponses: DOWNLOAD_ATTEMPTS });
    await assert.rejects(fetchModel(FILE_URL), (error) => {
      assert.equal(error.code, 'model_not_found');
      assert.match(error.message, /ended after 25000 of 50000 bytes in each of 3 downloads/);
      return true;
    });
    const models = await storage.open(MODEL_CACHE_NAME);
    assert.equal(models.entries.size, 0, 'a short download was cached');
  });

  test('failed cache write warns and returns the download', async () => {
    const { store, fetchModel, warnings, network } = await setUp();
    store.models.failPut = true;
    assert.deepEqual(await bytesOf(await fetchModel(FILE_URL)), FILE_BYTES);
    assert.match(warnings.join('\n'), /storing .* in Cache Storage failed \(QuotaExceededError/);
    await fetchModel(FILE_URL);
    assert.equal(network.calls.length, 2);
  });

  test('HTTP errors pass through unchanged', async () => {
    const fetchModel = createModelFetch({
      store: null, base: BASE, fetch: async () => new Response('missing', { status: 404 }),
    });
    assert.equal((await fetchModel(FILE_URL)).status, 404);
  });

  test('cache false opens nothing', async () => {
    const storage = new MemoryCacheStorage();
    assert.equal(await openModelCache(false, { caches: storage }), null);
    assert.equal(storage.caches.size, 0);
  });

  test('cache true without Cache Storage raises storage_unavailable', async () => {
    await assert.rejects(openModelCache(true, { caches: undefined }), { code: 'storage_unavailable' });
    assert.equal(await openModelCache('auto', { caches: undefined }), null);
  });

  test('cache auto warns when Cache Storage fails to open', async () => {
    const broken = { open: async () => { throw new DOMException('denied', 'SecurityError'); } };
    const warnings = [];
    const store = await openModelCache('auto', { caches: broken, onStorageWarning: (m) => warnings.push(m) });
    assert.equal(store, null);
    assert.match(warnings[0], /SecurityError: denied/);
    await assert.rejects(openModelCache(true, { caches: broken }), { code: 'storage_unavailable' });
  });

  test('clearModelCache deletes both caches', async () => {
    const { storage, fetchModel } = await setUp();
    await fetchModel(FILE_URL);
    assert.equal(await clearModelCache(storage), true);
    assert.equal(storage.caches.size, 0);
  });
});
