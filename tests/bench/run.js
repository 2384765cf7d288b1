// `npm run bench`: runs every benchmark, prints its table and writes
// build/bench/results.json. Timings are ratios of medians measured side by
// side in this process; nothing is asserted.

import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';

import { benchDmnStep } from './dmn-step.js';
import { formatTiming, printTable } from './harness.js';
import { benchPreprocess } from './preprocess.js';

function ratio(timings, slower, faster) {
  return timings[slower] ? `${(timings[slower].median / timings[faster].median).toFixed(2)}×` : '—';
}

const machine = `${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, Node ${process.version}`;
console.log(`dualmem benchmarks, ${new Date().toISOString()}, ${machine}\n`);

console.log('DMN step, 1 view, 1000 classes × 50 slots × 512 dims (milliseconds per step, median and range)');
const dmn = await benchDmnStep();
printTable(['memory', 'bytes', 'wasm simd', 'wasm scalar', 'plain js', 'scalar / simd', 'plain js / simd'],
  dmn.map(({ precision, bytes, timings }) => [
    precision, bytes, formatTiming(timings['wasm simd']), formatTiming(timings['wasm scalar']),
    timings['plain js'] ? formatTiming(timings['plain js']) : '—',
    ratio(timings, 'wasm scalar', 'wasm simd'), ratio(timings, 'plain js', 'wasm simd')]));
const f32 = dmn.find((r) => r.precision === 'float32');
const i8 = dmn.find((r) => r.precision === 'int8');
console.log(`int8 step / float32 step (wasm simd): ` +
  `${(i8.timings['wasm simd'].median / f32.timings['wasm simd'].median).toFixed(2)}\n`);

console.log('Preprocessing an RGBA image to 3×224×224 (milliseconds per image)');
const preprocess = await benchPreprocess();
printTable(['image', 'wasm simd', 'wasm scalar', 'scalar / simd'], preprocess.map((r) => [
  `${r.width}×${r.height}`, formatTiming(r.timings.simd), formatTiming(r.timings.scalar),
  ratio(r.timings, 'scalar', 'simd')]));

mkdirSync(new URL('../../build/bench/', import.meta.url), { recursive: true });
writeFileSync(new URL('../../build/bench/results.json', import.meta.url),
  JSON.stringify({ date: new Date().toISOString(), machine, dmn, preprocess }, null, 2));
console.log('\nwrote build/bench/results.json');
