// Model downloads that survive bad networks and page reloads. Each file is
// fetched once and kept in Cache Storage beside a manifest entry with its
// size and SHA-256. A cached copy that no longer matches its manifest is
// deleted and downloaded again. A download that ends before its
// Content-Length is retried. A failed cache write is reported as a storage
// warning and the download is used anyway.
//
// The SHA-256 that was checked or stored for a response stays known
// (verifiedSha256), so that fingerprints can be derived from it instead of
// hashing the same hundreds of megabytes again. So do the bytes themselves
// (responseBytes): readModelFile takes them as they are, instead of copying
// hundreds of megabytes into a response body and back out of it.

import { sha256Hex } from './digest.js';
import { DualmemError } from './errors.js';

/** Cache Storage cache of model files, keyed by file URL. */
export const MODEL_CACHE_NAME = 'dualmem-models-v1';

/** Cache of manifest entries ({ size, sha256, storedAt }), keyed by the same URLs. */
export const MANIFEST_CACHE_NAME = 'dualmem-model-manifest-v1';

// Digests of the responses that createModelFetch built itself. A WeakMap
// rather than a header, so that no server can supply a digest of its own.
const responseDigests = new WeakMap();

// Bodies of the same responses, as the Uint8Array that was read or checked.
const responseBodies = new WeakMap();

/**
 * Returns the SHA-256 of the body of a response of createModelFetch, as
 * checked against the manifest or as stored in it.
 *
 * @param {Response} response
 * @returns {string|null} 64 lowercase hex digits; null for any other
 *   response, and when the cache is off
 */
export function verifiedSha256(response) {
  return responseDigests.get(response) ?? null;
}

/**
 * Returns the body of a response of createModelFetch without reading it.
 * The response's own body stays readable and gives the same bytes. The two
 * share memory until the body is read, so neither may be changed.
 *
 * @param {Response} response
 * @returns {Uint8Array|null} null for any other response
 */
export function responseBytes(response) {
  return responseBodies.get(response) ?? null;
}

/** Downloads of one file before a short body is reported as an error. */
export const DOWNLOAD_ATTEMPTS = 3;

/**
 * Opens the two caches that the `cache` option requests.
 *
 * @param {'auto'|boolean} setting `false` turns caching off; `true` requires
 *   it; `'auto'` uses it where the platform has it
 * @param {object} [options]
 * @param {CacheStorage} [options.caches=globalThis.caches]
 * @param {(message:string, error?:Error) => void} [options.onStorageWarning]
 *   called when 'auto' finds Cache Storage present but unusable
 * @returns {Promise<{models:Cache, manifest:Cache}|null>} null when off
 * @throws {DualmemError} `storage_unavailable` when `setting` is true and
 *   Cache Storage is missing or cannot be opened
 */
export async function openModelCache(setting, options = {}) {
  if (setting === false) return null;
  const storage = options.caches ?? globalThis.caches;
  if (storage === undefined) {
    if (setting === true) {
      throw new DualmemError('storage_unavailable',
        'cache is true but this environment has no Cache Storage (it exists in browsers, ' +
        'in secure contexts only); set cache to "auto" or false');
    }
    return null;
  }
  try {
    const [models, manifest] = await Promise.all([
      storage.open(MODEL_CACHE_NAME), storage.open(MANIFEST_CACHE_NAME),
    ]);
    return { models, manifest };
  } catch (error) {
    const message = `Cache Storage could not be opened (${error?.name ?? 'Error'}: ${error?.message ?? error})`;
    if (setting === true) {
      throw new DualmemError('storage_unavailable', `${message}; set cache to "auto" or false`,
        { cause: error });
    }
    options.onStorageWarning?.(`${message}; model files are downloaded without caching`, error);
    return null;
  }
}

/**
 * Deletes every cached model file and manifest entry.
 *
 * @param {CacheStorage} [storage=globalThis.caches]
 * @returns {Promise<boolean>} whether anything was deleted
 */
export async function clearModelCache(storage = globalThis.caches) {
  if (storage === undefined) return false;
  const [models, manifest] = await Promise.all([
    storage.delete(MODEL_CACHE_NAME), storage.delete(MANIFEST_CACHE_NAME),
  ]);
  return models || manifest;
}

/**
 * Builds the fetch function that readModelFile uses for model files: a
 * verified cached copy when there is one, else a download with retries that
 * is then cached.
 *
 * @param {object} options
 * @param {{models:Cache, manifest:Cache}|null} options.store from openModelCache
 * @param {typeof fetch} [options.fetch=globalThis.fetch]
 * @param {URL} [options.base] model folder, to name files in progress reports
 * @param {({file, loaded, total}) => void} [options.onProgress] bytes read so far
 * @param {(message:string, error?:Error) => void} [options.onStorageWarning]
 * @returns {(url:string) => Promise<Response>} resolves to the server's
 *   response when it is an error or HTML (readModelFile reports those), else
 *   to a complete in-memory response, whose digest verifiedSha256 gives when
 *   it is known
 */
export function createModelFetch(options) {
  const fetchFunction = options.fetch ?? globalThis.fetch.bind(globalThis);
  const warn = options.onStorageWarning ?? (() => {});
  const nameOf = (url) => (options.base && url.startsWith(options.base.href)
    ? url.slice(options.base.href.length) : url);

  return async function fetchModelFile(url) {
    const file = nameOf(url);
    if (options.store) {
      const cached = await readVerified(options.store, url, file, warn);
      if (cached !== null) {
        options.onProgress?.({ file, loaded: cached.bytes.length, total: cached.bytes.length });
        return resultResponse(cached.bytes, cached.contentType, cached.sha256);
      }
    }
    for (let attempt = 1; ; attempt += 1) {
      const response = await fetchFunction(url);
      const contentType = response.headers.get('content-type') ?? '';
      if (!response.ok || contentType.includes('text/html')) return response;
      const body = await readWithProgress(response, file, options.onProgress);
      if (body.complete) {
        const sha256 = options.store ? await storeVerified(options.store, url, body.bytes, contentType, warn) : null;
        return resultResponse(body.bytes, contentType, sha256);
      }
      if (attempt === DOWNLOAD_ATTEMPTS) {
        throw new DualmemError('model_not_found',
          `model file ${file} ended after ${body.bytes.length} of ${body.expected} bytes in each of ` +
          `${DOWNLOAD_ATTEMPTS} downloads; check the network or the server`, { file });
      }
    }
  };
}

function bytesHeaders(bytes, contentType) {
  return { 'content-type': contentType || 'application/octet-stream', 'content-length': String(bytes.length) };
}

/** A response of `bytes` for Cache Storage. */
function bytesResponse(bytes, contentType) {
  return new Response(bytes, { status: 200, headers: bytesHeaders(bytes, contentType) });
}

/**
 * Builds the response that fetchModelFile resolves to. Its body is a stream
 * that gives `bytes` only when read: a Response built on the bytes copies
 * them at once, and readModelFile takes them from responseBytes instead.
 */
function resultResponse(bytes, contentType, sha256) {
  const body = new ReadableStream({
    pull(controller) {
      controller.enqueue(bytes);
      controller.close();
    },
  });
  const response = new Response(body, { status: 200, headers: bytesHeaders(bytes, contentType) });
  responseBodies.set(response, bytes);
  if (sha256 !== null) responseDigests.set(response, sha256);
  return response;
}

/**
 * Reads a response body, reporting progress. The body is complete when it
 * has Content-Length bytes. Encoded (for example gzip) responses are not
 * checked, because their header counts the encoded bytes.
 */
async function readWithProgress(response, file, onProgress) {
  const encoded = (response.headers.get('content-encoding') ?? 'identity') !== 'identity';
  const expected = encoded ? 0 : Number(response.headers.get('content-length')) || 0;
  const chunks = [];
  let loaded = 0;
  let failed = false;
  if (response.body) {
    const reader = response.body.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        chunks.push(value);
        loaded += value.length;
        onProgress?.({ file, loaded, total: expected });
      }
    } catch {
      // A connection reset mid-body: treated as a short download and retried.
      failed = true;
    }
  }
  const bytes = new Uint8Array(loaded);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  const complete = !failed && (expected === 0 || loaded === expected);
  return { bytes, expected: expected || '?', complete };
}

/**
 * Returns the cached bytes of `url` with their SHA-256 when they match their
 * manifest, else null.
 */
async function readVerified(store, url, file, warn) {
  let response;
  let manifestResponse;
  try {
    [response, manifestResponse] = await Promise.all([store.models.match(url), store.manifest.match(url)]);
  } catch (error) {
    warn(`reading ${file} from Cache Storage failed (${error?.message ?? error}); downloading it`, error);
    return null;
  }
  if (!response) return null;

  let problem = null;
  let bytes = null;
  let sha256 = null;
  if (!manifestResponse) {
    problem = 'it has no manifest entry, so its last write did not finish';
  } else {
    const manifest = await manifestResponse.json().catch(() => null);
    bytes = new Uint8Array(await response.arrayBuffer());
    if (manifest === null) {
      problem = 'its manifest entry is not valid JSON';
    } else if (bytes.length !== manifest.size) {
      problem = `it has ${bytes.length} bytes, expected ${manifest.size}`;
    } else {
      sha256 = await sha256Hex(bytes);
      if (sha256 !== manifest.sha256) problem = `its SHA-256 differs from the manifest's ${manifest.sha256}`;
    }
  }
  if (problem === null) return { bytes, sha256, contentType: response.headers.get('content-type') };

  warn(`the cached copy of ${file} is corrupt (${problem}); downloading it again`);
  await Promise.all([store.models.delete(url), store.manifest.delete(url)]).catch(() => {});
  return null;
}

/**
 * Writes a file, then its manifest entry, so that a manifest only exists for
 * a whole file. Returns the file's SHA-256, or null when hashing failed.
 */
async function storeVerified(store, url, bytes, contentType, warn) {
  let sha256 = null;
  try {
    sha256 = await sha256Hex(bytes);
    await store.models.put(url, bytesResponse(bytes, contentType));
    const manifest = JSON.stringify({ size: bytes.length, sha256, storedAt: new Date().toISOString() });
    await store.manifest.put(url, new Response(manifest, { headers: { 'content-type': 'application/json' } }));
  } catch (error) {
    warn(`storing ${url} in Cache Storage failed (${error?.name ?? 'Error'}: ${error?.message ?? error}); ` +
      'it will be downloaded again next time', error);
    await store.models.delete(url).catch(() => {});
  }
  return sha256;
}
