// DMN step benchmark: one view against C classes × S dynamic slots × D dims,
// WASM SIMD128 against the same core built without SIMD and against a plain
// JavaScript version, alternating in one process, for each memory precision.
// Writes build/bench/dmn-step.json.

import { mkdirSync, writeFileSync } from 'node:fs';

import { DualMemory, loadCore } from '../../web/src/core.js';
import { compare, formatTiming, printTable } from './harness.js';
import { PlainDmn } from './plain-dmn.js';

/** Deterministic pseudo-random unit vectors. */
function makeVectors(count, dim, seed) {
  const data = new Float32Array(count * dim);
  let state = seed >>> 0;
  for (let i = 0; i < data.length; i++) {
    state = (state * 1664525 + 1013904223) >>> 0;
    data[i] = state / 4294967296 - 0.5;
  }
  for (let v = 0; v < count; v++) {
    const row = data.subarray(v * dim, (v + 1) * dim);
    const norm = Math.hypot(...row);
    for (let i = 0; i < dim; i++) row[i] /= norm;
  }
  return data;
}

function fillMemory(memory, texts, slots, numClasses, slotsPerClass, dim) {
  for (let c = 0; c < numClasses; c++) memory.addClass(texts.subarray(c * dim, (c + 1) * dim));
  for (let c = 0; c < numClasses; c++) {
    for (let s = 0; s < slotsPerClass; s++) {
      const index = c * slotsPerClass + s;
      // Entropies above any a query can have, so steps replace slots and the
      // memory stays full, as in a long-running session.
      memory.restoreDynamic(c, slots.subarray(index * dim, (index + 1) * dim), 10 + s, 0);
    }
  }
}

function fillPlain(plain, texts, slots, numClasses, slotsPerClass, dim) {
  for (let c = 0; c < numClasses; c++) plain.addClass(texts.subarray(c * dim, (c + 1) * dim));
  for (let c = 0; c < numClasses; c++) {
    for (let s = 0; s < slotsPerClass; s++) {
      const index = c * slotsPerClass + s;
      plain.insert(c, slots.subarray(index * dim, (index + 1) * dim), 10 + s);
    }
  }
}

export async function benchDmnStep({ numClasses = 1000, slotsPerClass = 50, dim = 512,
  precisions = ['float32', 'float16', 'int8'], rounds = 9, plain = true } = {}) {
  const cores = { simd: await loadCore({ variant: 'simd' }), scalar: await loadCore({ variant: 'scalar' }) };
  const texts = makeVectors(numClasses, dim, 1);
  const slots = makeVectors(numClasses * slotsPerClass, dim, 2);
  const queries = makeVectors(16, dim, 3);
  const results = [];
  for (const precision of precisions) {
    const config = { capacity: slotsPerClass, precision };
    const memories = {
      simd: new DualMemory(cores.simd, dim, config),
      scalar: new DualMemory(cores.scalar, dim, config),
    };
    for (const memory of Object.values(memories)) {
      fillMemory(memory, texts, slots, numClasses, slotsPerClass, dim);
    }
    const contenders = {};
    let q = 0;
    const nextQuery = () => queries.subarray((q++ % 16) * dim, (q % 16 || 16) * dim);
    contenders['wasm simd'] = () => memories.simd.step(nextQuery());
    contenders['wasm scalar'] = () => memories.scalar.step(nextQuery());
    let plainDmn = null;
    if (plain && precision !== 'float16') {
      plainDmn = new PlainDmn(dim, { capacity: slotsPerClass, precision });
      fillPlain(plainDmn, texts, slots, numClasses, slotsPerClass, dim);
      contenders['plain js'] = () => plainDmn.step(nextQuery());
    }
    const timings = compare(contenders, { rounds });
    results.push({ numClasses, slotsPerClass, dim, precision, bytes: memories.simd.memoryBytes, timings });
    for (const memory of Object.values(memories)) memory.dispose();
  }
  return results;
}

function ratio(timings, slower, faster) {
  return timings[slower] ? `${(timings[slower].median / timings[faster].median).toFixed(1)}×` : '—';
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const results = await benchDmnStep();
  printTable(['memory', 'wasm simd', 'wasm scalar', 'plain js', 'scalar/simd', 'js/simd'],
    results.map(({ precision, timings }) => [
      precision, formatTiming(timings['wasm simd']), formatTiming(timings['wasm scalar']),
      timings['plain js'] ? formatTiming(timings['plain js']) : '—',
      ratio(timings, 'wasm scalar', 'wasm simd'), ratio(timings, 'plain js', 'wasm simd')]));
  const f32 = results.find((r) => r.precision === 'float32');
  const i8 = results.find((r) => r.precision === 'int8');
  if (f32 && i8) {
    console.log(`int8 step / float32 step (wasm simd): ${(i8.timings['wasm simd'].median /
      f32.timings['wasm simd'].median).toFixed(2)}`);
  }
  mkdirSync(new URL('../../build/bench/', import.meta.url), { recursive: true });
  writeFileSync(new URL('../../build/bench/dmn-step.json', import.meta.url),
    JSON.stringify({ date: new Date().toISOString(), results }, null, 2));
}
