// Preprocessing benchmark: a 1920×1080 and a 4000×3000 RGBA image to the
// 3×224×224 CLIP input, WASM SIMD128 against the same code built without
// SIMD, alternating in one process. Writes build/bench/preprocess.json.

import { mkdirSync, writeFileSync } from 'node:fs';

import { loadCore, Preprocessor } from '../../web/src/core.js';
import { CLIP_PREPROCESSOR_CONFIG as configJson } from '../js/helpers/clip-preprocess.js';
import { compare, formatTiming, printTable } from './harness.js';

/** Makes a deterministic photo-like RGBA image: gradients plus noise. */
function makeImage(width, height) {
  const pixels = new Uint8Array(width * height * 4);
  let state = 12345;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      state = (state * 1664525 + 1013904223) >>> 0;
      const noise = state >>> 28;
      const i = (y * width + x) * 4;
      pixels[i] = (x * 255 / width + noise) & 255;
      pixels[i + 1] = (y * 255 / height + noise) & 255;
      pixels[i + 2] = ((x + y) & 255) ^ noise;
      pixels[i + 3] = 255;
    }
  }
  return pixels;
}

export async function benchPreprocess({ rounds = 15 } = {}) {
  const simd = new Preprocessor(await loadCore({ variant: 'simd' }), configJson);
  const scalar = new Preprocessor(await loadCore({ variant: 'scalar' }), configJson);
  const results = [];
  for (const [width, height] of [[1920, 1080], [4000, 3000]]) {
    const pixels = makeImage(width, height);
    const timings = compare({
      simd: () => simd.run(pixels, width, height, 4),
      scalar: () => scalar.run(pixels, width, height, 4),
    }, { rounds });
    results.push({ width, height, timings, ratio: timings.scalar.median / timings.simd.median });
  }
  simd.dispose();
  scalar.dispose();
  return results;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const results = await benchPreprocess();
  printTable(['image', 'WASM SIMD', 'WASM scalar', 'scalar / SIMD'], results.map((r) => [
    `${r.width}×${r.height}`, formatTiming(r.timings.simd), formatTiming(r.timings.scalar),
    `${r.ratio.toFixed(2)}×`]));
  mkdirSync(new URL('../../build/bench/', import.meta.url), { recursive: true });
  writeFileSync(new URL('../../build/bench/preprocess.json', import.meta.url),
    JSON.stringify({ date: new Date().toISOString(), results }, null, 2));
}
