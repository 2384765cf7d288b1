// Test-time views of an image for the DMN step: view 0 is the image itself,
// the others are random crops, half of them mirrored, as in the augmented
// views of Dual Memory Networks (Zhang et al., CVPR 2024). The crops depend
// only on the pixels and a seed, so one image gets the same views in Node, in
// a page and in a worker, whatever came before it.

import { seededRandom } from './seeded-random.js';

/** Smallest share of the image area that a crop keeps. */
export const MIN_CROP_AREA = 0.35;

/** Aspect ratios (width / height) a crop may have, relative to square. */
export const CROP_ASPECT_RANGE = Object.freeze([3 / 4, 4 / 3]);

/**
 * Hashes the size and up to 4096 evenly spaced bytes of the pixels with
 * FNV-1a. RGBA pixels are hashed as the RGB bytes they contain, because the
 * browser decoder may hand over RGBA where Node hands over RGB, and one
 * image must get the same views in both.
 */
function hashPixels(image, seed) {
  let hash = (0x811c9dc5 ^ seed) >>> 0;
  const mix = (value) => {
    hash = Math.imul(hash ^ value, 0x01000193) >>> 0;
  };
  mix(image.width);
  mix(image.height);
  const { pixels } = image;
  const rgba = image.channels === 4;
  const length = rgba ? (pixels.length / 4) * 3 : pixels.length;
  const step = Math.max(1, Math.floor(length / 4096));
  for (let i = 0; i < length; i += step) {
    // Byte i of the RGB layout is channel i % 3 of pixel i / 3.
    mix(rgba ? pixels[i + Math.floor(i / 3)] : pixels[i]);
  }
  return hash;
}

/**
 * Returns the seed of an image's views for the core's `runViews`: the
 * option seed mixed with a hash of the pixels, so that two images get
 * different crops and one image gets the same crops wherever it runs.
 */
export function viewSeed(image, seed) {
  return hashPixels(image, seed);
}

/** Copies the rectangle (left, top, width, height) of `image`, mirrored when `flip`. */
function cropImage(image, left, top, width, height, flip) {
  const { channels } = image;
  const pixels = new Uint8Array(width * height * channels);
  for (let y = 0; y < height; y += 1) {
    const sourceRow = ((top + y) * image.width + left) * channels;
    const targetRow = y * width * channels;
    if (!flip) {
      pixels.set(image.pixels.subarray(sourceRow, sourceRow + width * channels), targetRow);
      continue;
    }
    for (let x = 0; x < width; x += 1) {
      const source = sourceRow + (width - 1 - x) * channels;
      for (let c = 0; c < channels; c += 1) pixels[targetRow + x * channels + c] = image.pixels[source + c];
    }
  }
  return { pixels, width, height, channels };
}

/**
 * Returns `count` views of a decoded image.
 *
 * @param {{pixels:Uint8Array, width:number, height:number, channels:number}} image
 * @param {number} count views wanted, at least 1
 * @param {number} seed unsigned 32-bit seed of the crops
 * @returns {object[]} decoded images; the first is `image` itself
 */
export function makeViews(image, count, seed) {
  const views = [image];
  if (count <= 1) return views;
  const random = seededRandom(hashPixels(image, seed));
  const [minAspect, maxAspect] = CROP_ASPECT_RANGE;
  for (let k = 1; k < count; k += 1) {
    const area = (MIN_CROP_AREA + (1 - MIN_CROP_AREA) * random()) * image.width * image.height;
    const aspect = Math.exp(Math.log(minAspect) + (Math.log(maxAspect) - Math.log(minAspect)) * random());
    const width = Math.max(1, Math.min(image.width, Math.round(Math.sqrt(area * aspect))));
    const height = Math.max(1, Math.min(image.height, Math.round(Math.sqrt(area / aspect))));
    const left = Math.floor(random() * (image.width - width + 1));
    const top = Math.floor(random() * (image.height - height + 1));
    views.push(cropImage(image, left, top, width, height, random() < 0.5));
  }
  return views;
}
