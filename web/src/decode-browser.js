// Image decoding in the browser with the browser's own decoders, following
// the policy at the top of image-input.js.
//
// createImageBitmap decodes with EXIF orientation applied, alpha not
// premultiplied and no colour conversion. Reading its pixels back is the hard
// part. A 2D canvas stores premultiplied colour, so a pixel with alpha a < 255
// comes back with its RGB rounded to steps of about 255 / a, and a pixel with
// alpha 0 comes back black. A WebGL texture upload with UNPACK_PREMULTIPLY_ALPHA_WEBGL
// false keeps the stored bytes, so the decoder reads through WebGL when it
// passes a self-test, and through a 2D canvas otherwise. A JPEG has no alpha
// and reads exactly through the faster 2D canvas.

import { DualmemError } from './errors.js';
import {
  checkImageSize, keepChannels, notDecodable, readImageSize, sniffFormat, unknownFormatMessage,
} from './image-input.js';

const BITMAP_OPTIONS = Object.freeze({
  imageOrientation: 'from-image',
  premultiplyAlpha: 'none',
  colorSpaceConversion: 'none',
});

// Largest texture side used for one WebGL read; larger images are read in tiles.
const MAX_TILE_SIDE = 4096;

// Largest image, in pixels, read through the one 2D canvas kept between
// decodes. Making a canvas and its context for each 640×480 JPEG cost about
// 1 ms in headless Chromium 156. A larger image gets a canvas of its own, so
// the kept one uses at most 16 MiB.
const MAX_KEPT_CANVAS_PIXELS = 4096 * 1024;

/**
 * Decodes an image into 8-bit pixels for `Preprocessor.run`.
 *
 * @param {Blob|File|ImageBitmap|ImageData|HTMLImageElement|HTMLCanvasElement|OffscreenCanvas} input
 * @param {object} [options]
 * @param {'auto'|'webgl'|'canvas'} [options.readback='auto'] how pixels are read
 *   back; 'auto' takes the 2D canvas for a JPEG Blob, else WebGL when its
 *   self-test passes
 * @param {boolean} [options.allowRgba=false] return a colour image as the
 *   RGBA bytes read back, 4 channels, instead of copying out RGB. The core's
 *   preprocessing ignores the fourth byte, so this gives it the same input
 *   without the copy, which took 1.4 to 1.9 ms for 640×480 pixels in Chromium 156.
 *   Gray images stay 1 channel.
 * @returns {Promise<{pixels:Uint8Array|Uint8ClampedArray, width:number, height:number,
 *   channels:1|3|4, readback:'webgl'|'canvas'|'imagedata'}>} row-major interleaved
 *   pixels, as displayed
 * @throws {DualmemError} `image_not_decodable` for empty, truncated, corrupt or
 *   unknown data; `image_too_large` above the core's limits (from the file
 *   header before decoding, where the format is known); `invalid_argument`
 *   for another input type or readback; `decoder_unavailable` when the
 *   browser lacks createImageBitmap or OffscreenCanvas
 */
export async function decodeImage(input, options = {}) {
  const readback = options.readback ?? 'auto';
  const colourChannels = options.allowRgba === true ? 4 : 3;
  if (!['auto', 'webgl', 'canvas'].includes(readback)) {
    throw new DualmemError('invalid_argument',
      `readback is ${JSON.stringify(readback)}, expected "auto", "webgl" or "canvas"`);
  }
  if (typeof ImageData !== 'undefined' && input instanceof ImageData) {
    checkImageSize(input.width, input.height);
    // ImageData is unpremultiplied by definition, so its bytes are used as they are.
    return {
      pixels: keepChannels(input.data, 4, colourChannels), width: input.width, height: input.height,
      channels: colourChannels, readback: 'imagedata',
    };
  }
  if (typeof createImageBitmap !== 'function' || typeof OffscreenCanvas !== 'function') {
    throw new DualmemError('decoder_unavailable',
      'this environment lacks createImageBitmap or OffscreenCanvas; use a current browser, ' +
      'or decodeImage of web/src/decode-node.js under Node');
  }

  let bitmap;
  let gray = false;
  let opaque = false;
  let ownsBitmap = true;
  if (typeof Blob !== 'undefined' && input instanceof Blob) {
    ({ bitmap, gray, opaque } = await decodeBlob(input));
  } else if (typeof ImageBitmap !== 'undefined' && input instanceof ImageBitmap) {
    checkImageSize(input.width, input.height);
    bitmap = input;
    ownsBitmap = false;
  } else if (isDrawable(input)) {
    bitmap = await bitmapFromElement(input);
  } else {
    throw new DualmemError('invalid_argument',
      `image input is ${input?.constructor?.name ?? typeof input}, expected a Blob, File, ` +
      'ImageBitmap, ImageData, HTMLImageElement, HTMLCanvasElement or OffscreenCanvas');
  }

  try {
    let method = readback;
    // Premultiplication leaves pixels of alpha 255 unchanged, so a format
    // without alpha reads exactly through the 2D canvas. For a 640×480 JPEG
    // in headless Chromium 156 with its software GL, that path took 10 ms
    // and WebGL 40 ms.
    if (method === 'auto' && opaque) method = 'canvas';
    if (method === 'auto') method = (await webglIsExact()) ? 'webgl' : 'canvas';
    const rgba = method === 'webgl' ? await readWithWebgl(bitmap) : readWithCanvas(bitmap);
    const channels = gray ? 1 : colourChannels;
    const pixels = channels === 4 ? rgba : keepChannels(rgba, 4, channels);
    return { pixels, width: bitmap.width, height: bitmap.height, channels, readback: method };
  } finally {
    if (ownsBitmap) bitmap.close();
  }
}

function isDrawable(input) {
  return (typeof HTMLImageElement !== 'undefined' && input instanceof HTMLImageElement) ||
    (typeof HTMLCanvasElement !== 'undefined' && input instanceof HTMLCanvasElement) ||
    (typeof OffscreenCanvas !== 'undefined' && input instanceof OffscreenCanvas);
}

async function decodeBlob(blob) {
  const bytes = new Uint8Array(await blob.arrayBuffer());
  if (bytes.length === 0) throw notDecodable('input is empty (0 bytes)');
  const format = sniffFormat(bytes);
  if (format === null) throw notDecodable(unknownFormatMessage(bytes));
  if (format === 'svg') {
    // Rejected as under Node: a document to render, not a photograph.
    throw notDecodable('image format svg is not accepted, expected a raster image such as PNG or JPEG');
  }

  const size = readImageSize(bytes);
  if (size !== null) checkImageSize(size.width, size.height);
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob, BITMAP_OPTIONS);
  } catch (error) {
    throw notDecodable(`truncated, corrupt or unsupported ${format.toUpperCase()}: ` +
      `${error?.message ?? error}`, error);
  }
  if (size === null) {
    // The header parser does not know this format (TIFF, HEIF, SVG), so the
    // limits are checked after decoding, before the pixel copy.
    try {
      checkImageSize(bitmap.width, bitmap.height);
    } catch (error) {
      bitmap.close();
      throw error;
    }
  }
  return { bitmap, gray: isStoredAsGray(bytes, format), opaque: format === 'jpeg' };
}

async function bitmapFromElement(element) {
  if (typeof HTMLImageElement !== 'undefined' && element instanceof HTMLImageElement) {
    try {
      await element.decode();
    } catch (error) {
      throw notDecodable(`the image element could not be decoded (src ${element.currentSrc || element.src}): ` +
        `${error?.message ?? error}`, error);
    }
    checkImageSize(element.naturalWidth, element.naturalHeight);
  } else {
    checkImageSize(element.width, element.height);
  }
  return createImageBitmap(element, BITMAP_OPTIONS);
}

/** Returns whether the file stores one gray channel (PNG colour type 0 or 4, one-component JPEG). */
function isStoredAsGray(bytes, format) {
  if (format === 'png') return bytes.length > 25 && (bytes[25] === 0 || bytes[25] === 4);
  if (format !== 'jpeg') return false;
  let at = 2;
  while (at + 10 <= bytes.length && bytes[at] === 0xff) {
    const marker = bytes[at + 1];
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return bytes[at + 9] === 1;
    }
    if (marker === 0xda) return false;
    at += 2 + ((bytes[at + 2] << 8) | bytes[at + 3]);
  }
  return false;
}

let keptContext = null;

/**
 * Returns a 2D context of at least width × height: the kept one for images
 * up to MAX_KEPT_CANVAS_PIXELS, grown when needed, else a new one.
 */
function canvasContext(width, height) {
  if (width * height > MAX_KEPT_CANVAS_PIXELS) {
    return new OffscreenCanvas(width, height).getContext('2d', { willReadFrequently: true });
  }
  keptContext ??= new OffscreenCanvas(width, height).getContext('2d', { willReadFrequently: true });
  const { canvas } = keptContext;
  // Setting a side clears the canvas and resets the context, so the sides
  // are only ever grown, and only when the image does not fit.
  if (canvas.width < width || canvas.height < height) {
    const grown = { width: Math.max(canvas.width, width), height: Math.max(canvas.height, height) };
    if (grown.width * grown.height > MAX_KEPT_CANVAS_PIXELS) Object.assign(grown, { width, height });
    canvas.width = grown.width;
    canvas.height = grown.height;
  }
  return keptContext;
}

function readWithCanvas(bitmap) {
  const { width, height } = bitmap;
  const context = canvasContext(width, height);
  // 'copy' replaces the pixels under the image, alpha included, so nothing
  // of an earlier image shows through a transparent one. getImageData returns
  // a copy, so the caller never sees the kept canvas change.
  context.globalCompositeOperation = 'copy';
  context.drawImage(bitmap, 0, 0);
  return context.getImageData(0, 0, width, height).data;
}

function createGl() {
  const canvas = new OffscreenCanvas(1, 1);
  const attributes = { premultipliedAlpha: false, antialias: false, depth: false, stencil: false };
  return canvas.getContext('webgl2', attributes) ?? canvas.getContext('webgl', attributes);
}

/** Uploads `source` to a texture and reads its RGBA bytes back, unchanged. */
function readTexture(gl, source, width, height) {
  const texture = gl.createTexture();
  const framebuffer = gl.createFramebuffer();
  try {
    gl.bindTexture(gl.TEXTURE_2D, texture);
    gl.pixelStorei(gl.UNPACK_FLIP_Y_WEBGL, false);
    gl.pixelStorei(gl.UNPACK_PREMULTIPLY_ALPHA_WEBGL, false);
    gl.pixelStorei(gl.UNPACK_COLORSPACE_CONVERSION_WEBGL, gl.NONE);
    gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGBA, gl.RGBA, gl.UNSIGNED_BYTE, source);
    gl.bindFramebuffer(gl.FRAMEBUFFER, framebuffer);
    gl.framebufferTexture2D(gl.FRAMEBUFFER, gl.COLOR_ATTACHMENT0, gl.TEXTURE_2D, texture, 0);
    if (gl.checkFramebufferStatus(gl.FRAMEBUFFER) !== gl.FRAMEBUFFER_COMPLETE) {
      throw new DualmemError('decoder_unavailable', 'WebGL cannot read back an RGBA8 texture');
    }
    gl.pixelStorei(gl.PACK_ALIGNMENT, 1);
    const pixels = new Uint8Array(width * height * 4);
    gl.readPixels(0, 0, width, height, gl.RGBA, gl.UNSIGNED_BYTE, pixels);
    const error = gl.getError();
    if (error !== gl.NO_ERROR) {
      throw new DualmemError('decoder_unavailable', `WebGL read-back failed with error 0x${error.toString(16)}`);
    }
    return pixels;
  } finally {
    gl.bindFramebuffer(gl.FRAMEBUFFER, null);
    gl.deleteFramebuffer(framebuffer);
    gl.deleteTexture(texture);
  }
}

function releaseGl(gl) {
  gl.getExtension('WEBGL_lose_context')?.loseContext();
}

async function readWithWebgl(bitmap) {
  const gl = createGl();
  if (gl === null) throw new DualmemError('decoder_unavailable', 'WebGL is not available');
  try {
    const { width, height } = bitmap;
    const tile = Math.min(MAX_TILE_SIDE, gl.getParameter(gl.MAX_TEXTURE_SIZE));
    if (width <= tile && height <= tile) return readTexture(gl, bitmap, width, height);

    // Larger than one texture: read tiles cut from the bitmap and copy their rows in place.
    const rgba = new Uint8Array(width * height * 4);
    for (let top = 0; top < height; top += tile) {
      for (let left = 0; left < width; left += tile) {
        const tileWidth = Math.min(tile, width - left);
        const tileHeight = Math.min(tile, height - top);
        const part = await createImageBitmap(bitmap, left, top, tileWidth, tileHeight,
          { premultiplyAlpha: 'none', colorSpaceConversion: 'none' });
        let pixels;
        try {
          pixels = readTexture(gl, part, tileWidth, tileHeight);
        } finally {
          part.close();
        }
        for (let row = 0; row < tileHeight; row += 1) {
          rgba.set(pixels.subarray(row * tileWidth * 4, (row + 1) * tileWidth * 4),
            ((top + row) * width + left) * 4);
        }
      }
    }
    return rgba;
  } finally {
    releaseGl(gl);
  }
}

let webglCheck = null;

/**
 * Returns whether WebGL hands back the exact bytes of an unpremultiplied
 * bitmap, tested once on pixels that premultiplication would change.
 */
export function webglIsExact() {
  webglCheck ??= (async () => {
    const probe = new Uint8ClampedArray([200, 100, 50, 0, 201, 99, 51, 1, 17, 230, 129, 128, 255, 255, 255, 255]);
    try {
      const bitmap = await createImageBitmap(new ImageData(probe, 2, 2),
        { premultiplyAlpha: 'none', colorSpaceConversion: 'none' });
      try {
        const gl = createGl();
        if (gl === null) return false;
        try {
          const read = readTexture(gl, bitmap, 2, 2);
          return read.every((value, index) => value === probe[index]);
        } finally {
          releaseGl(gl);
        }
      } finally {
        bitmap.close();
      }
    } catch {
      return false;
    }
  })();
  return webglCheck;
}
