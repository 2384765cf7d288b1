// Turns any accepted image input into decoded 8-bit pixels: the browser's
// decoders in pages and workers, sharp under Node. URLs are fetched first.

import { DualmemError } from './errors.js';

const isNode =
  typeof process !== 'undefined' && typeof process.versions?.node === 'string' &&
  typeof window === 'undefined' && typeof WorkerGlobalScope === 'undefined';

// A specifier in a variable, so that bundlers leave the Node decoder (and
// sharp) out of browser builds.
const NODE_DECODER = './decode-node.js';

let decoderLoading = null;

function loadDecoder() {
  decoderLoading ??= isNode ? import(/* @vite-ignore */ NODE_DECODER) : import('./decode-browser.js');
  return decoderLoading;
}

function isHttpUrl(input) {
  if (input instanceof URL) return input.protocol === 'http:' || input.protocol === 'https:';
  return typeof input === 'string' && /^https?:\/\//i.test(input);
}

async function fetchImage(input) {
  const base = typeof location === 'undefined' ? undefined : location.href;
  const url = new URL(input, base);
  let response;
  try {
    response = await fetch(url.href);
  } catch (error) {
    throw new DualmemError('not_found', `fetching image ${url.href} failed: ${error?.message ?? error}`,
      { cause: error });
  }
  if (!response.ok) {
    throw new DualmemError('not_found', `image ${url.href} returned HTTP ${response.status}, expected 200`);
  }
  return response.blob();
}

/**
 * Decodes an image input.
 *
 * @param {Blob|ImageBitmap|ImageData|HTMLImageElement|HTMLCanvasElement|OffscreenCanvas|
 *   ArrayBuffer|ArrayBufferView|URL|string} input in Node also a Buffer or a
 *   file path; a string is a URL in browsers
 * @param {object} [options]
 * @param {boolean} [options.allowRgba=false] in browsers, a colour image may
 *   come back as 4 channels, RGBA (see decode-browser.js); Node decodes to
 *   RGB either way
 * @returns {Promise<{pixels:Uint8Array|Uint8ClampedArray, width:number, height:number,
 *   channels:number}>}
 * @throws {DualmemError} `image_not_decodable`, `image_too_large`,
 *   `not_found` (a URL or file that cannot be read), `invalid_argument`
 *   (another input type), `decoder_unavailable`
 */
export async function decodeInput(input, options = {}) {
  const { decodeImage } = await loadDecoder();
  if (isNode) {
    if (isHttpUrl(input)) input = await fetchImage(input);
    if (typeof Blob !== 'undefined' && input instanceof Blob) input = new Uint8Array(await input.arrayBuffer());
    return decodeImage(input);
  }
  if (typeof input === 'string' || input instanceof URL) input = await fetchImage(input);
  if (input instanceof ArrayBuffer || ArrayBuffer.isView(input)) input = new Blob([input]);
  return decodeImage(input, { allowRgba: options.allowRgba === true });
}
