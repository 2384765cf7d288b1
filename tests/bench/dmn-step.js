// DMN step benchmark: one view against C classes × S dynamic slots × D dims,
// for each memory precision. Contenders, alternated round by round:
//   wasm simd    DualMemory.step in the SIMD128 build
//   wasm scalar  the same core built without SIMD
//   plain js     PlainDmn (plain-dmn.js), Float32Array loops
//   bare pass    DualMemory.benchmarkStreamingPass on the SIMD memory: one
//                read of every stored slot and nothing else, the least a
//                step can cost
//   native       the native core (AVX2 with -march=native) in a child
//                process, build/native/dualmem_dmn_bench, which times its
//                own step and bare pass ("native pass")
// Every memory is filled the same way: deterministic unit vectors, and
// restored dynamic slots whose entropies exceed any a query can have, so
// each step replaces a slot as in a long-running session.
// Writes build/bench/dmn-step.json when run on its own.

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { DualMemory, loadCore } from '../../web/src/core.js';
import { compareAsync, formatTiming, printTable } from './harness.js';
import { PlainDmn } from './plain-dmn.js';

const NATIVE_BENCH = fileURLToPath(new URL('../../build/native/dualmem_dmn_bench', import.meta.url));

const PRECISIONS = ['float32', 'float16', 'int8'];
const ALL_CONTENDERS = ['wasm simd', 'wasm scalar', 'plain js', 'bare pass', 'native', 'native pass'];

// Class counts, contenders and rounds. A sample is the mean of `inner`
// consecutive calls, so that sub-millisecond steps at 100 classes are not
// lost in timer resolution and in caches cooled by the other contenders.
// Plain JavaScript takes tens of milliseconds a step even there, so it is
// timed one call a sample. At 10 000 classes the float32 memory is 1.2 GB
// per copy and a plain JavaScript step takes seconds, so only the SIMD
// build, its bare pass and native run there. Plain JavaScript skips float16
// at every size: Node 20 has no Float16Array, so PlainDmn does not store it.
const DEFAULT_PLAN = [
  { numClasses: 100, precisions: PRECISIONS, contenders: ALL_CONTENDERS, rounds: 21, warmup: 2, inner: 10 },
  { numClasses: 1000, precisions: PRECISIONS, contenders: ALL_CONTENDERS, rounds: 11, warmup: 1, inner: 1 },
  {
    numClasses: 10000, precisions: PRECISIONS,
    contenders: ['wasm simd', 'bare pass', 'native', 'native pass'], rounds: 7, warmup: 1, inner: 1,
  },
];

// Distinct queries each contender cycles through. They pick about as many
// distinct pseudo-labels, and the default plan makes at most 230 steps per
// memory, so no class gets `capacity` (50) replacements and every step
// replaces a slot.
const NUM_QUERIES = 64;

// Entropy of the restored slots: above ln(classes) for fewer than e^10
// (about 22 000) classes, so every step's prediction is more confident.
const RESTORED_ENTROPY = 10;

/**
 * Writes unit vector `index` of stream `seed` into `out`: a 32-bit linear
 * congruential generator started from a hash of (seed, index), values
 * uniform in [-0.5, 0.5), scaled to unit length in double. MakeVector in
 * dmn_step_bench.cc computes the same bits.
 */
export function makeVector(seed, index, dim, out = new Float32Array(dim)) {
  let state = (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(index + 1, 0xc2b2ae35)) >>> 0;
  let sum = 0;
  for (let i = 0; i < dim; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = state / 4294967296 - 0.5;
    sum += out[i] * out[i];
  }
  const norm = Math.sqrt(sum);
  for (let i = 0; i < dim; i++) out[i] /= norm;
  return out;
}

/**
 * Adds every class's text embedding (stream `seed`), then `slotsPerClass`
 * slots per class (stream seed + 1) with entropies RESTORED_ENTROPY + slot,
 * through `addClass(vector)` and `addSlot(class, vector, entropy)`.
 */
function fill({ addClass, addSlot }, { numClasses, slotsPerClass, dim, seed }) {
  const vector = new Float32Array(dim);
  for (let c = 0; c < numClasses; c++) addClass(makeVector(seed, c, dim, vector));
  for (let c = 0; c < numClasses; c++) {
    for (let s = 0; s < slotsPerClass; s++) {
      addSlot(c, makeVector(seed + 1, c * slotsPerClass + s, dim, vector), RESTORED_ENTROPY + s);
    }
  }
}

function fillDualMemory(memory, shape) {
  fill({
    addClass: (vector) => memory.addClass(vector),
    addSlot: (c, vector, entropy) => memory.restoreDynamic(c, vector, entropy, 0),
  }, shape);
}

function fillPlain(plain, shape) {
  fill({
    addClass: (vector) => plain.addClass(vector),
    addSlot: (c, vector, entropy) => plain.insert(c, vector, entropy),
  }, shape);
}

/**
 * The dualmem_dmn_bench child: requests and replies are one line each (see
 * dmn_step_bench.cc). A reply is a number of milliseconds, "ready BYTES" or
 * "error: MESSAGE".
 */
class NativeBench {
  #child;
  #pending = [];
  #failure = null;

  constructor(path) {
    this.#child = spawn(path, [], { stdio: ['pipe', 'pipe', 'inherit'] });
    // A write after the child died fails with EPIPE; the exit handler
    // rejects the waiting requests with the reason.
    this.#child.stdin.on('error', () => {});
    this.#child.on('error', (error) => this.#fail(`${path} could not be started: ${error.message}`));
    this.#child.on('exit', (code, signal) => this.#fail(`${path} exited with ${signal ?? `code ${code}`}`));
    createInterface({ input: this.#child.stdout }).on('line', (line) => {
      const waiter = this.#pending.shift();
      if (line.startsWith('error: ')) waiter?.reject(new Error(`dualmem_dmn_bench: ${line.slice(7)}`));
      else waiter?.resolve(line);
    });
  }

  #fail(message) {
    this.#failure ??= new Error(message);
    for (const waiter of this.#pending.splice(0)) waiter.reject(this.#failure);
  }

  #request(line) {
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      this.#pending.push({ resolve, reject });
      this.#child.stdin.write(`${line}\n`);
    });
  }

  /** Builds and fills a memory, replacing the previous one; returns its bytes. */
  async build(shape, precision) {
    const reply = await this.#request(JSON.stringify({
      classes: shape.numClasses, slots: shape.slotsPerClass, dim: shape.dim, precision, seed: shape.seed,
    }));
    return Number(reply.split(' ')[1]);
  }

  /**
   * Returns the mean milliseconds of one step ('step') or bare pass
   * ('pass') over `count` consecutive calls, timed by the child.
   */
  async time(operation, count) {
    return Number(await this.#request(`${operation} ${count}`));
  }

  close() {
    this.#child.stdin.end();
  }
}

/** Wraps a synchronous call into a contender that reports the mean milliseconds of `inner` calls. */
function timed(work, inner) {
  return async () => {
    const start = performance.now();
    for (let i = 0; i < inner; i++) work();
    return (performance.now() - start) / inner;
  };
}

/** Returns a function that hands out the queries in turn, from the first. */
function queryCycle(queries, dim) {
  let next = 0;
  return () => {
    const query = queries.subarray(next * dim, (next + 1) * dim);
    next = (next + 1) % NUM_QUERIES;
    return query;
  };
}

function log(message) {
  process.stderr.write(`[dmn-step] ${message}\n`);
}

async function benchOne(cores, native, shape, precision, { contenders, rounds, warmup, inner }) {
  const { numClasses, slotsPerClass, dim, seed } = shape;
  const queries = new Float32Array(NUM_QUERIES * dim);
  for (let q = 0; q < NUM_QUERIES; q++) makeVector(seed + 2, q, dim, queries.subarray(q * dim, (q + 1) * dim));
  const config = { capacity: slotsPerClass, precision };
  const runs = (name) => contenders.includes(name);
  const memories = [];
  const timers = {};
  let bytes = null;
  let nativeBytes = null;
  try {
    const start = performance.now();
    if (runs('wasm simd') || runs('bare pass')) {
      const simd = new DualMemory(cores.simd, dim, config);
      memories.push(simd);
      fillDualMemory(simd, shape);
      bytes = simd.memoryBytes;
      const nextStep = queryCycle(queries, dim);
      const nextPass = queryCycle(queries, dim);
      if (runs('wasm simd')) timers['wasm simd'] = timed(() => simd.step(nextStep()), inner);
      if (runs('bare pass')) {
        timers['bare pass'] = timed(() => simd.benchmarkStreamingPass(nextPass()), inner);
      }
    }
    if (runs('wasm scalar')) {
      const scalar = new DualMemory(cores.scalar, dim, config);
      memories.push(scalar);
      fillDualMemory(scalar, shape);
      const next = queryCycle(queries, dim);
      timers['wasm scalar'] = timed(() => scalar.step(next()), inner);
    }
    if (runs('plain js') && precision !== 'float16') {
      const plain = new PlainDmn(dim, { capacity: slotsPerClass, precision });
      fillPlain(plain, shape);
      const next = queryCycle(queries, dim);
      timers['plain js'] = timed(() => plain.step(next()), 1);
    }
    if (native && (runs('native') || runs('native pass'))) {
      nativeBytes = await native.build(shape, precision);
      if (runs('native')) timers.native = () => native.time('step', inner);
      if (runs('native pass')) timers['native pass'] = () => native.time('pass', inner);
    }
    log(`${numClasses} classes, ${precision}: filled in ${((performance.now() - start) / 1000).toFixed(1)} s`);

    const timings = await compareAsync(timers, { rounds, warmup });
    return { numClasses, slotsPerClass, dim, precision, bytes, nativeBytes, rounds, inner, timings };
  } finally {
    for (const memory of memories) memory.dispose();
  }
}

/**
 * Runs the DMN step benchmark.
 *
 * @param {object} [options]
 * @param {number[]} [options.classCounts] class counts to run (default
 *   100, 1000 and 10000); other counts take the settings of 1000
 * @param {string[]} [options.precisions] overrides every class count's precisions
 * @param {number} [options.rounds] overrides every class count's rounds
 * @param {string[]} [options.contenders] runs only these of each class
 *   count's contenders (names as in the table: 'wasm simd', 'bare pass', ...)
 * @param {boolean} [options.plain=true] include plain JavaScript
 * @param {boolean} [options.native=true] include the native child; skipped
 *   with a message when build/native/dualmem_dmn_bench does not exist
 * @param {number} [options.slotsPerClass=50]
 * @param {number} [options.dim=512]
 * @param {number} [options.seed=1] first of the three vector streams
 * @returns {Promise<object[]>} one entry per class count and precision:
 *   numClasses, slotsPerClass, dim, precision, bytes (WASM memoryBytes),
 *   nativeBytes, rounds, inner (calls per sample) and timings
 *   (milliseconds per call, as compareAsync returns them)
 */
export async function benchDmnStep(options = {}) {
  const classCounts = options.classCounts ?? DEFAULT_PLAN.map((entry) => entry.numClasses);
  const slotsPerClass = options.slotsPerClass ?? 50;
  const dim = options.dim ?? 512;
  const seed = options.seed ?? 1;
  const cores = { simd: await loadCore({ variant: 'simd' }), scalar: await loadCore({ variant: 'scalar' }) };

  let native = null;
  if (options.native ?? true) {
    if (existsSync(NATIVE_BENCH)) native = new NativeBench(NATIVE_BENCH);
    else log(`${NATIVE_BENCH} not found (run npm run build); skipping the native contender`);
  }

  const results = [];
  try {
    for (const numClasses of classCounts) {
      const plan = DEFAULT_PLAN.find((entry) => entry.numClasses === numClasses) ??
        { ...DEFAULT_PLAN[1], numClasses };
      const contenders = plan.contenders.filter((name) =>
        (options.contenders ?? ALL_CONTENDERS).includes(name) && (name !== 'plain js' || (options.plain ?? true)));
      const shape = { numClasses, slotsPerClass, dim, seed };
      for (const precision of options.precisions ?? plan.precisions) {
        results.push(await benchOne(cores, native, shape, precision,
          { ...plan, contenders, rounds: options.rounds ?? plan.rounds }));
      }
    }
  } finally {
    native?.close();
  }
  return results;
}

function ratio(timings, slower, faster) {
  if (!timings[slower] || !timings[faster]) return '—';
  return `${(timings[slower].median / timings[faster].median).toFixed(2)}×`;
}

function cell(timing) {
  return timing ? formatTiming(timing) : '—';
}

/** Prints one table per class count, then the int8 / float32 step ratios. */
export function printDmnStep(results) {
  const classCounts = [...new Set(results.map((r) => r.numClasses))];
  for (const numClasses of classCounts) {
    const rows = results.filter((r) => r.numClasses === numClasses);
    const { slotsPerClass, dim } = rows[0];
    console.log(`\nDMN step, 1 view, ${numClasses} classes × ${slotsPerClass} slots × ${dim} dims ` +
      '(milliseconds per call, median and min–max)');
    printTable(['memory', 'MiB', ...ALL_CONTENDERS, 'scalar / simd', 'plain js / simd',
      'step / bare pass', 'simd / native', 'native step / pass'],
    rows.map(({ precision, bytes, timings }) => [
      precision, bytes === null ? '—' : (bytes / 2 ** 20).toFixed(1),
      ...ALL_CONTENDERS.map((name) => cell(timings[name])),
      ratio(timings, 'wasm scalar', 'wasm simd'), ratio(timings, 'plain js', 'wasm simd'),
      ratio(timings, 'wasm simd', 'bare pass'), ratio(timings, 'wasm simd', 'native'),
      ratio(timings, 'native', 'native pass')]));
    const f32 = rows.find((r) => r.precision === 'float32');
    const i8 = rows.find((r) => r.precision === 'int8');
    if (f32 && i8) {
      const share = (name) => (f32.timings[name] && i8.timings[name]
        ? (i8.timings[name].median / f32.timings[name].median).toFixed(2) : '—');
      console.log(`int8 step / float32 step: wasm simd ${share('wasm simd')}, native ${share('native')}`);
    }
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const started = performance.now();
  const results = await benchDmnStep();
  printDmnStep(results);
  log(`done in ${((performance.now() - started) / 1000).toFixed(0)} s`);
  mkdirSync(new URL('../../build/bench/', import.meta.url), { recursive: true });
  writeFileSync(new URL('../../build/bench/dmn-step.json', import.meta.url),
    JSON.stringify({ date: new Date().toISOString(), results }, null, 2));
}
