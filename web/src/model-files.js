// Reads a CLIP model folder in the Hugging Face / transformers.js layout,
// from a URL (fetch) or, under Node, from a folder on disk, and checks that
// it is a CLIP before any large file is read.

import { DualmemError } from './errors.js';
import { responseBytes, verifiedSha256 } from './model-cache.js';

/** Files every CLIP folder must have, besides the two ONNX towers. */
export const REQUIRED_FILES = Object.freeze([
  'config.json',
  'preprocessor_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
]);

/** ONNX files of each tower, by whether the int8 form is wanted. */
export function onnxFileNames(quantized) {
  const suffix = quantized ? '_quantized' : '';
  return { vision: `onnx/vision_model${suffix}.onnx`, text: `onnx/text_model${suffix}.onnx` };
}

const isNode =
  typeof process !== 'undefined' && typeof process.versions?.node === 'string' &&
  typeof window === 'undefined';

// In a variable, so that bundlers do not try to pack a Node module for browsers.
const NODE_FS = 'node:fs/promises';

/** The embedded model's folder, beside the package. */
// Bundlers copy files, not folders, so the @vite-ignore comment makes Vite skip this URL.
// A bundled app passes `model` with the folder's location.
export const EMBEDDED_MODEL_URL = new URL(/* @vite-ignore */ '../../models/tiny-clip/', import.meta.url);

function isFilesystemSource(source) {
  if (source instanceof URL) return source.protocol === 'file:';
  return isNode && !/^[a-z][a-z0-9+.-]*:/i.test(source);
}

/**
 * Normalizes a model source to a base URL ending in `/`, or to a folder path
 * under Node.
 */
export function resolveModelSource(source) {
  if (source === undefined || source === null) return EMBEDDED_MODEL_URL;
  if (source instanceof URL) return source.href.endsWith('/') ? source : new URL(`${source.href}/`);
  if (typeof source !== 'string' || source.length === 0) {
    throw new DualmemError('bad_option',
      `model is ${JSON.stringify(source)}, expected a URL or a folder path of a CLIP model`);
  }
  if (isFilesystemSource(source)) return source.endsWith('/') ? source : `${source}/`;
  const base = typeof location !== 'undefined' ? location.href : undefined;
  const url = new URL(source, base);
  return url.href.endsWith('/') ? url : new URL(`${url.href}/`);
}

function describeSource(source) {
  return source instanceof URL ? source.href : source;
}

/**
 * Reads one file of the model folder.
 *
 * @param {URL|string} base from `resolveModelSource`
 * @param {string} name path inside the folder, e.g. "onnx/text_model.onnx"
 * @param {object} [options] `as` ("text" or "bytes"), `fetch` (a fetch
 *   function to use), `onProgress` ({file, loaded, total})
 * @throws {DualmemError} `model_not_found` when the file is missing or the
 *   server answers with an error or an HTML page
 */
export async function readModelFile(base, name, options = {}) {
  return (await readModelData(base, name, options.as ?? 'bytes', options)).data;
}

/**
 * Reads one file of the model folder as bytes, with its SHA-256 when the
 * fetch function is one of createModelFetch and checked or stored the file
 * in Cache Storage.
 *
 * @param {URL|string} base from `resolveModelSource`
 * @param {string} name path inside the folder
 * @param {object} [options] as for readModelFile, without `as`
 * @returns {Promise<{bytes:Uint8Array, sha256:string|null}>} sha256 is 64
 *   lowercase hex digits, or null when it is not known without hashing
 * @throws {DualmemError} as readModelFile
 */
export async function readModelBytes(base, name, options = {}) {
  const { data, sha256 } = await readModelData(base, name, 'bytes', options);
  return { bytes: data, sha256 };
}

/** Reads a file as `as` ('text' or 'bytes'), with the digest its response carried. */
async function readModelData(base, name, as, options) {
  if (!(base instanceof URL) || base.protocol === 'file:') {
    const { readFile } = await import(/* @vite-ignore */ NODE_FS);
    const path = base instanceof URL ? new URL(name, base) : `${base}${name}`;
    try {
      const data = await readFile(path);
      options.onProgress?.({ file: name, loaded: data.length, total: data.length });
      rejectHtml(data, name, describeSource(base));
      const bytes = new Uint8Array(data.buffer, data.byteOffset, data.length);
      return { data: as === 'text' ? data.toString('utf8') : bytes, sha256: null };
    } catch (error) {
      if (error.code === 'ENOENT' || error.code === 'ENOTDIR') {
        throw new DualmemError('model_not_found',
          `model file ${name} is missing in ${describeSource(base)}`, { file: name, cause: error });
      }
      throw error;
    }
  }

  const url = new URL(name, base);
  const fetchFunction = options.fetch ?? globalThis.fetch;
  let response;
  try {
    response = await fetchFunction(url.href);
  } catch (error) {
    throw new DualmemError('model_not_found',
      `could not fetch model file ${url.href}: ${error.message}`, { file: name, cause: error });
  }
  if (!response.ok) {
    throw new DualmemError('model_not_found',
      `model file ${url.href} returned HTTP ${response.status}, expected 200`, { file: name });
  }
  const contentType = response.headers.get('content-type') ?? '';
  if (contentType.includes('text/html')) {
    throw new DualmemError('model_not_found',
      `model file ${url.href} was served as an HTML page (content-type ${contentType}); ` +
      'the server probably answers unknown paths with its index page. Check the model URL',
      { file: name });
  }
  const sha256 = verifiedSha256(response);
  const data = await readBody(response, name, options.onProgress);
  rejectHtml(data, name, url.href);
  return {
    data: as === 'text' ? new TextDecoder().decode(data) : data,
    sha256,
  };
}

/**
 * Throws when a model file is an HTML page. No model file starts with `<`
 * (JSON starts with `{`, ONNX protobuf with a field tag byte), so this
 * catches a server that sends its index page under another content type.
 */
function rejectHtml(data, name, where) {
  let start = 0;
  while (start < data.length && start < 64 && /\s/.test(String.fromCharCode(data[start]))) start += 1;
  if (data[start] !== 0x3c) return;
  const head = new TextDecoder().decode(data.subarray(start, start + 40)).replace(/\s+/g, ' ');
  throw new DualmemError('model_not_found',
    `model file ${name} from ${where} is an HTML page (it starts with ${JSON.stringify(head)}), not the ` +
    'model file; the server probably answers unknown paths with its index page. Check the model URL',
    { file: name });
}

async function readBody(response, name, onProgress) {
  const total = Number(response.headers.get('content-length')) || 0;
  // A body that createModelFetch has already read whole is taken without a
  // copy and reported once.
  const known = responseBytes(response);
  if (known !== null) {
    onProgress?.({ file: name, loaded: known.length, total: known.length });
    return known;
  }
  if (!response.body || !onProgress) return new Uint8Array(await response.arrayBuffer());
  const chunks = [];
  let loaded = 0;
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.length;
    onProgress({ file: name, loaded, total });
  }
  if (total && loaded !== total) {
    throw new DualmemError('model_not_found',
      `model file ${name} ended after ${loaded} of ${total} bytes; the download was cut short`,
      { file: name });
  }
  const data = new Uint8Array(loaded);
  let offset = 0;
  for (const chunk of chunks) {
    data.set(chunk, offset);
    offset += chunk.length;
  }
  return data;
}

function parseJsonFile(text, name) {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new DualmemError('model_not_clip', `model file ${name} is not valid JSON: ${error.message}`,
      { file: name });
  }
}

/**
 * Reads and checks the small files of a CLIP folder.
 *
 * @returns {Promise<{base, config, preprocessorConfigText, tokenizerJsonText,
 *   projectionDim:number}>}
 * @throws {DualmemError} `model_not_found` for a missing file,
 *   `model_not_clip` when config.json does not describe a CLIP
 */
export async function readClipMetadata(source, options = {}) {
  const base = resolveModelSource(source);
  const configText = await readModelFile(base, 'config.json', { ...options, as: 'text' });
  const config = parseJsonFile(configText, 'config.json');
  if (config.model_type !== 'clip') {
    throw new DualmemError('model_not_clip',
      `config.json of ${describeSource(base)} has model_type ${JSON.stringify(config.model_type)}, ` +
      'expected "clip"', { file: 'config.json' });
  }
  const projectionDim = config.projection_dim ?? config.text_config?.projection_dim;
  if (!Number.isInteger(projectionDim) || projectionDim <= 0) {
    throw new DualmemError('model_not_clip',
      `config.json has projection_dim ${JSON.stringify(projectionDim)}, expected a positive integer`,
      { file: 'config.json' });
  }
  const [preprocessorConfigText, tokenizerJsonText] = await Promise.all([
    readModelFile(base, 'preprocessor_config.json', { ...options, as: 'text' }),
    readModelFile(base, 'tokenizer.json', { ...options, as: 'text' }),
    readModelFile(base, 'tokenizer_config.json', { ...options, as: 'text' }),
    readModelFile(base, 'special_tokens_map.json', { ...options, as: 'text' }),
  ]);
  parseJsonFile(preprocessorConfigText, 'preprocessor_config.json');
  const contextLength = config.text_config?.max_position_embeddings ?? 77;
  return { base, config, preprocessorConfigText, tokenizerJsonText, projectionDim, contextLength };
}
