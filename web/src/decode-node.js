// Image decoding under Node with sharp (libvips), following the policy at the
// top of image-input.js. In short, EXIF orientation is applied and the first
// frame is taken. Alpha is dropped, 16 bits are reduced to the high byte, CMYK
// is converted as Pillow does, ICC profiles are ignored and gray stays one channel.

import { readFile } from 'node:fs/promises';

import { DualmemError } from './errors.js';
import {
  checkImageSize, cmykToRgb, notDecodable, sniffFormat, unknownFormatMessage,
} from './image-input.js';

// Raster formats accepted. SVG, PDF and the other formats that libvips can
// render are rejected: they are documents, not photographs, and rendering them
// runs far more code on untrusted input.
const ACCEPTED_FORMATS = new Set(['jpeg', 'png', 'webp', 'gif', 'tiff', 'avif', 'heif']);

let sharpLoading = null;

async function loadSharp() {
  sharpLoading ??= import('sharp').then((module) => module.default, (error) => {
    sharpLoading = null;
    throw new DualmemError('decoder_unavailable',
      `decoding images under Node needs the optional package sharp, which failed to load ` +
      `(${error?.message ?? error}); run \`npm install sharp\``, { cause: error });
  });
  return sharpLoading;
}

async function readInput(input) {
  if (typeof input === 'string' || input instanceof URL) {
    try {
      return await readFile(input);
    } catch (error) {
      throw new DualmemError('not_found', `cannot read image file ${input}: ${error.message}`,
        { cause: error });
    }
  }
  if (input instanceof ArrayBuffer) return new Uint8Array(input);
  if (input instanceof Uint8Array) return input;
  if (ArrayBuffer.isView(input)) {
    return new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  }
  throw new DualmemError('invalid_argument',
    `image input is ${input?.constructor?.name ?? typeof input}, expected a file path, ` +
    'Buffer, Uint8Array or ArrayBuffer');
}

/** Wraps a failure of sharp in `image_not_decodable`, naming the format. */
function decodeFailure(bytes, format, error) {
  if (format === null) return notDecodable(unknownFormatMessage(bytes), error);
  const reason = String(error?.message ?? error).trim();
  return notDecodable(`truncated or corrupt ${format.toUpperCase()}: ${reason}`, error);
}

/** Chooses how sharp hands over the pixels for the colour space of the file. */
function planOutput(metadata) {
  const sixteenBit = metadata.depth === 'ushort';
  if (metadata.space === 'cmyk') return { kind: 'cmyk', colourspace: 'cmyk', sixteenBit: false };
  if (metadata.space === 'b-w' || metadata.space === 'grey16') {
    return { kind: 'gray', colourspace: sixteenBit ? 'grey16' : 'b-w', sixteenBit };
  }
  return { kind: 'rgb', colourspace: sixteenBit ? 'rgb16' : 'srgb', sixteenBit };
}

/**
 * Decodes an image file into 8-bit pixels for `Preprocessor.run`.
 *
 * @param {Buffer|Uint8Array|ArrayBuffer|string|URL} input the encoded file, or its path
 * @returns {Promise<{pixels:Uint8Array, width:number, height:number, channels:1|3}>}
 *   row-major interleaved pixels, as displayed (EXIF orientation applied)
 * @throws {DualmemError} `image_not_decodable` for empty, truncated, corrupt or
 *   unknown data; `image_too_large` above the core's limits (checked from the
 *   header before decoding); `decoder_unavailable` without sharp; `not_found`
 *   for an unreadable path; `invalid_argument` for another input type
 */
export async function decodeImage(input) {
  const bytes = await readInput(input);
  if (bytes.length === 0) throw notDecodable('input is empty (0 bytes)');
  const sharp = await loadSharp();
  const format = sniffFormat(bytes);

  // Header first: the size check must come before any pixel is decoded. The
  // pixel limit of sharp is off because checkImageSize applies the core's.
  const options = { limitInputPixels: false, pages: 1, page: 0, ignoreIcc: true };
  let metadata;
  try {
    metadata = await sharp(bytes, options).metadata();
  } catch (error) {
    throw decodeFailure(bytes, format, error);
  }
  if (!ACCEPTED_FORMATS.has(metadata.format)) {
    throw notDecodable(`image format ${metadata.format} is not accepted, expected one of ` +
      `${[...ACCEPTED_FORMATS].join(', ')}`);
  }
  checkImageSize(metadata.width, metadata.pageHeight ?? metadata.height);

  const plan = planOutput(metadata);
  let pipeline = sharp(bytes, options).rotate();
  if (plan.kind === 'cmyk') pipeline = pipeline.pipelineColourspace('cmyk');
  pipeline = pipeline.toColourspace(plan.colourspace);
  let decoded;
  try {
    decoded = await pipeline.raw({ depth: plan.sixteenBit ? 'ushort' : 'uchar' })
      .toBuffer({ resolveWithObject: true });
  } catch (error) {
    throw decodeFailure(bytes, format ?? metadata.format, error);
  }
  return toPixels(decoded.data, decoded.info, plan);
}

/** Turns sharp's raw output into 1 or 3 bytes a pixel, dropping alpha. */
function toPixels(data, info, plan) {
  const { width, height, channels: stride } = info;
  const channels = plan.kind === 'gray' ? 1 : 3;
  const count = width * height;

  if (plan.kind === 'cmyk') {
    return { pixels: cmykToRgb(data, stride), width, height, channels };
  }
  const pixels = new Uint8Array(count * channels);
  if (plan.sixteenBit) {
    // sharp writes 16-bit samples in machine order; the high byte is value >> 8.
    const samples = new Uint16Array(data.buffer, data.byteOffset, data.byteLength / 2);
    for (let i = 0; i < count; i += 1) {
      for (let c = 0; c < channels; c += 1) pixels[i * channels + c] = samples[i * stride + c] >> 8;
    }
  } else if (stride === channels) {
    pixels.set(data);
  } else {
    for (let i = 0; i < count; i += 1) {
      for (let c = 0; c < channels; c += 1) pixels[i * channels + c] = data[i * stride + c];
    }
  }
  return { pixels, width, height, channels };
}

/**
 * Decodes an image and runs the core's CLIP preprocessing on it.
 *
 * @param {object} core module from `loadCore()`
 * @param {string} configJson contents of a preprocessor_config.json
 * @param {Buffer|Uint8Array|ArrayBuffer|string|URL} input the encoded file, or its path
 * @returns {Promise<Float32Array>} 3 × cropHeight × cropWidth floats, CHW
 * @throws {DualmemError} the errors of decodeImage and of Preprocessor
 */
export async function preprocessImageFile(core, configJson, input) {
  const { Preprocessor } = await import('./core.js');
  const { pixels, width, height, channels } = await decodeImage(input);
  const preprocessor = new Preprocessor(core, configJson);
  try {
    return preprocessor.run(pixels, width, height, channels);
  } finally {
    preprocessor.dispose();
  }
}
