// What the image decoders of dualmem (decode-node.js with sharp,
// decode-browser.js with the browser's own decoders) agree on, so that one
// picture gives the same pixels to the core's CLIP preprocessing everywhere.
//
// Decoding policy. The reference is the Hugging Face CLIPImageProcessor on
// Pillow 9.4, which made the preprocessing goldens. Each item names where
// dualmem departs from it.
//
// - Alpha: dropped, not composited. Each pixel keeps the RGB stored in the
//   file, as Pillow's convert('RGB') does, so a transparent pixel is neither
//   black nor white but whatever colour the file stores under it. In the
//   browser the RGB of partly transparent pixels is exact only on the WebGL
//   path; the 2D-canvas fallback stores premultiplied colour and loses it.
// - EXIF orientation: applied, so the model sees the picture as a viewer
//   shows it. The Python processor does not apply it, so a rotated JPEG gives
//   a different tensor there.
// - Animated GIF, WebP, AVIF and APNG: the first frame.
// - 16 bits a channel: reduced to 8 by keeping the high byte, as Pillow does
//   for 16-bit RGB PNGs. (Pillow clips 16-bit gray to 255 instead, which
//   turns most of such an image white; dualmem does not copy that.)
// - CMYK: converted to RGB with the plain formula of Pillow's convert('RGB'),
//   R = (255 - K) - (C * (255 - K)) / 255 rounded, without a colour profile.
// - ICC profiles: ignored; stored values are taken as sRGB, as Pillow does and
//   as a browser does with colorSpaceConversion 'none'.
// - Gray images: returned as 1 channel; the core replicates it to RGB.
// - Size: at most MAX_IMAGE_SIDE pixels a side and MAX_IMAGE_PIXELS in all,
//   the limits of the core. The size is read from the file header before any
//   pixel is decoded, and a larger image is rejected with `image_too_large`.

import { DualmemError } from './errors.js';

/** Largest accepted image side in pixels; equals kMaxImageSide of src/preprocess.h. */
export const MAX_IMAGE_SIDE = 16384;

/** Largest accepted image area in pixels; equals kMaxImagePixels of src/preprocess.h. */
export const MAX_IMAGE_PIXELS = 64 * 1024 * 1024;

/**
 * Names the container format of `bytes` from its magic number.
 *
 * @param {Uint8Array} bytes the start of a file (16 bytes suffice)
 * @returns {'png'|'jpeg'|'gif'|'webp'|'bmp'|'tiff'|'avif'|'heif'|'svg'|null}
 */
export function sniffFormat(bytes) {
  const ascii = (start, end) => String.fromCharCode(...bytes.subarray(start, end));
  if (bytes.length >= 8 && ascii(0, 8) === '\x89PNG\r\n\x1a\n') return 'png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  if (bytes.length >= 6 && (ascii(0, 6) === 'GIF87a' || ascii(0, 6) === 'GIF89a')) return 'gif';
  if (bytes.length >= 12 && ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return 'webp';
  if (bytes.length >= 2 && ascii(0, 2) === 'BM') return 'bmp';
  if (bytes.length >= 4 && (ascii(0, 4) === 'II*\0' || ascii(0, 4) === 'MM\0*')) return 'tiff';
  if (bytes.length >= 12 && ascii(4, 8) === 'ftyp') {
    const brand = ascii(8, 12);
    if (brand === 'avif' || brand === 'avis') return 'avif';
    if (['heic', 'heix', 'mif1', 'msf1', 'heim', 'heis', 'hevc'].includes(brand)) return 'heif';
  }
  const head = ascii(0, Math.min(bytes.length, 256)).trimStart().toLowerCase();
  if (head.startsWith('<svg') || (head.startsWith('<?xml') && head.includes('<svg'))) return 'svg';
  return null;
}

/** Formats the first bytes of `bytes` in hex, for messages about unknown data. */
export function describeFirstBytes(bytes, count = 8) {
  const shown = Array.from(bytes.subarray(0, count), (b) => b.toString(16).padStart(2, '0'));
  return `first bytes ${shown.join(' ')}`;
}

/**
 * Reads width and height from the header of a PNG, GIF, WebP, BMP, JPEG or
 * AVIF file without decoding pixels. The size is the stored one, before EXIF
 * orientation, which does not change the side or area limits.
 *
 * @param {Uint8Array} bytes the whole file, or enough of it to hold the header
 * @returns {{width:number, height:number}|null} null when the format is not
 *   one of those or the header is cut short
 */
export function readImageSize(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const has = (length) => bytes.length >= length;
  switch (sniffFormat(bytes)) {
    case 'png':
      return has(24) ? { width: view.getUint32(16), height: view.getUint32(20) } : null;
    case 'gif':
      return has(10) ? { width: view.getUint16(6, true), height: view.getUint16(8, true) } : null;
    case 'bmp':
      return has(26)
        ? { width: Math.abs(view.getInt32(18, true)), height: Math.abs(view.getInt32(22, true)) }
        : null;
    case 'webp':
      return readWebpSize(bytes, view);
    case 'jpeg':
      return readJpegSize(bytes, view);
    case 'avif':
    case 'heif':
      return readIspeSize(bytes, view);
    default:
      return null;
  }
}

function readWebpSize(bytes, view) {
  if (bytes.length < 30) return null;
  const chunk = String.fromCharCode(...bytes.subarray(12, 16));
  if (chunk === 'VP8X') {
    // 24-bit little-endian canvas width and height, each stored minus one.
    const read24 = (at) => bytes[at] | (bytes[at + 1] << 8) | (bytes[at + 2] << 16);
    return { width: read24(24) + 1, height: read24(27) + 1 };
  }
  if (chunk === 'VP8 ') {
    return { width: view.getUint16(26, true) & 0x3fff, height: view.getUint16(28, true) & 0x3fff };
  }
  if (chunk === 'VP8L') {
    const bits = view.getUint32(21, true);
    return { width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
  }
  return null;
}

function readJpegSize(bytes, view) {
  let at = 2;
  while (at + 9 <= bytes.length) {
    if (bytes[at] !== 0xff) return null;
    const marker = bytes[at + 1];
    if (marker === 0xff) {
      at += 1;  // fill byte
      continue;
    }
    // SOF0..SOF15 carry the frame size, except DHT (c4), JPG (c8) and DAC (cc).
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return { width: view.getUint16(at + 7), height: view.getUint16(at + 5) };
    }
    if (marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) {
      at += 2;  // markers without a length field
      continue;
    }
    if (marker === 0xda || marker === 0xd9) return null;  // scan data before any frame header
    at += 2 + view.getUint16(at + 2);
  }
  return null;
}

function readIspeSize(bytes, view) {
  // The 'ispe' property box sits in the meta box near the start of the file:
  // size, 'ispe', version and flags, then 32-bit width and height.
  const end = Math.min(bytes.length, 1 << 16) - 16;
  for (let at = 4; at <= end; at += 1) {
    if (bytes[at] === 0x69 && bytes[at + 1] === 0x73 && bytes[at + 2] === 0x70 && bytes[at + 3] === 0x65) {
      return { width: view.getUint32(at + 8), height: view.getUint32(at + 12) };
    }
  }
  return null;
}

/**
 * Throws `image_too_large` when an image of this size exceeds the core's limits.
 *
 * @param {number} width pixels
 * @param {number} height pixels
 * @throws {DualmemError} `image_too_large`, with `width` and `height` attached
 */
export function checkImageSize(width, height) {
  if (width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE) {
    throw new DualmemError('image_too_large',
      `image is ${width} x ${height} pixels, but a side may be at most ${MAX_IMAGE_SIDE}; ` +
      'downscale it before classifying', { width, height });
  }
  if (width * height > MAX_IMAGE_PIXELS) {
    throw new DualmemError('image_too_large',
      `image is ${width} x ${height} = ${width * height} pixels, but at most ` +
      `${MAX_IMAGE_PIXELS} are accepted; downscale it before classifying`, { width, height });
  }
}

/** Builds the `image_not_decodable` error that both decoders raise. */
export function notDecodable(message, cause) {
  return new DualmemError('image_not_decodable', message, cause === undefined ? {} : { cause });
}

/** Formats the message for bytes that are not an image at all. */
export function unknownFormatMessage(bytes) {
  return `bytes are not a known image format (${describeFirstBytes(bytes)})`;
}

/**
 * Converts CMYK to RGB as Pillow's convert('RGB') does:
 * channel = (255 - K) - round(C * (255 - K) / 255), with no colour profile.
 *
 * @param {Uint8Array} cmyk `stride` bytes a pixel, C, M, Y, K first
 * @param {number} stride bytes a pixel in `cmyk` (4, or 5 with alpha)
 * @returns {Uint8Array} 3 bytes a pixel
 */
export function cmykToRgb(cmyk, stride = 4) {
  const count = Math.floor(cmyk.length / stride);
  const rgb = new Uint8Array(count * 3);
  for (let i = 0; i < count; i += 1) {
    const inverseK = 255 - cmyk[i * stride + 3];
    for (let c = 0; c < 3; c += 1) {
      // Exact rounding of x / 255 for 0 <= x <= 255 * 255, in integers.
      const product = cmyk[i * stride + c] * inverseK + 128;
      rgb[i * 3 + c] = inverseK - (((product >> 8) + product) >> 8);
    }
  }
  return rgb;
}

/**
 * Copies the first `keep` channels of each pixel, dropping the rest.
 *
 * @param {Uint8Array|Uint8ClampedArray} pixels `channels` bytes a pixel
 * @returns {Uint8Array} `keep` bytes a pixel
 */
export function keepChannels(pixels, channels, keep) {
  const count = Math.floor(pixels.length / channels);
  const out = new Uint8Array(count * keep);
  if (channels === 4 && keep === 3) {
    // RGBA to RGB, which every browser decode of a colour image needs,
    // unrolled: the general loop took 4.8 ms for 640×480 pixels in
    // Chromium 156, this one 2 ms.
    for (let i = 0, o = 0; o < out.length; i += 4, o += 3) {
      out[o] = pixels[i];
      out[o + 1] = pixels[i + 1];
      out[o + 2] = pixels[i + 2];
    }
    return out;
  }
  for (let i = 0, o = 0; i < pixels.length; i += channels, o += keep) {
    for (let c = 0; c < keep; c += 1) out[o + c] = pixels[i + c];
  }
  return out;
}
