// Shared by the decoder tests: the CLIP preprocessor config, the golden
// tensors of tests/fixtures/preprocess/ and the comparison in 1/255 units.

import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';

/** The preprocessor_config.json of OpenAI's CLIP ViT-B/32 as Hugging Face ships it. */
export const CLIP_PREPROCESSOR_CONFIG = JSON.stringify({
  crop_size: { height: 224, width: 224 },
  do_center_crop: true,
  do_convert_rgb: true,
  do_normalize: true,
  do_rescale: true,
  do_resize: true,
  image_mean: [0.48145466, 0.4578275, 0.40821073],
  image_processor_type: 'CLIPImageProcessor',
  image_std: [0.26862954, 0.26130258, 0.27577711],
  resample: 3,
  rescale_factor: 0.00392156862745098,
  size: { shortest_edge: 224 },
});

const CLIP_STD = [0.26862954, 0.26130258, 0.27577711];

/** Files of tests/fixtures/preprocess/ that have a golden tensor. */
export const GOLDEN_IMAGES = [
  'alpha_gradient_300x200.png', 'astronaut.png', 'checker_1000x800.png', 'chelsea.png',
  'coffee.png', 'exact_224x224.png', 'gray_noise_257x333.png', 'palette_190x150.png',
  'tall_40x900.png', 'tiny_5x7.png',
];

export const PREPROCESS_FIXTURES = new URL('../../fixtures/preprocess/', import.meta.url);

/** Reads the reference CHW float32 tensor of one fixture image. */
export function readGolden(name) {
  const bytes = gunzipSync(readFileSync(new URL(`${name}.f32.gz`, PREPROCESS_FIXTURES)));
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

/**
 * Compares two normalized CHW tensors of 3 planes in the units of the pixel
 * scale before normalization: a difference d in channel c is d * std[c] * 255.
 *
 * @returns {{max:number, p99:number, within1:number, beyond3:number, count:number}}
 *   max and 99th percentile in 1/255 units, the fraction within 1/255 and the
 *   count beyond 3/255
 */
export function compareInPixelUnits(actual, expected) {
  if (actual.length !== expected.length) {
    throw new Error(`tensor has ${actual.length} floats, expected ${expected.length}`);
  }
  const plane = actual.length / 3;
  const deviations = new Float64Array(actual.length);
  for (let i = 0; i < actual.length; i += 1) {
    const channel = Math.floor(i / plane);
    deviations[i] = Number.isFinite(actual[i])
      ? Math.abs(actual[i] - expected[i]) * CLIP_STD[channel] * 255
      : Infinity;
  }
  // A small slack absorbs float32 rounding of the normalization itself.
  const slack = 1e-3;
  let within1 = 0;
  let beyond3 = 0;
  for (const deviation of deviations) {
    if (deviation <= 1 + slack) within1 += 1;
    if (deviation > 3 + slack) beyond3 += 1;
  }
  deviations.sort();
  return {
    max: deviations[deviations.length - 1],
    p99: deviations[Math.floor(0.99 * (deviations.length - 1))],
    within1: within1 / deviations.length,
    beyond3,
    count: deviations.length,
  };
}

/** Formats a comparison for test output. */
export function formatDeviation(stats) {
  return `max ${stats.max.toPrecision(3)}/255, p99 ${stats.p99.toPrecision(3)}/255, ` +
    `${(100 * stats.within1).toFixed(2)}% within 1/255, ${stats.beyond3} beyond 3/255`;
}
