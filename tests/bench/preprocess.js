// Preprocessing benchmark: a 1920×1080 and a 4000×3000 RGBA image to the
// 3×224×224 CLIP input. WASM SIMD128, the same code built without SIMD and
// Pillow (a child Python process, pillow_preprocess.py, that times its own
// work) run in alternation, round by round. Before timing, Pillow's output
// is compared with dualmem's. Writes build/bench/preprocess.json.

import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { loadCore, Preprocessor } from '../../web/src/core.js';
import {
  CLIP_PREPROCESSOR_CONFIG as configJson, compareInPixelUnits, formatDeviation,
} from '../js/helpers/clip-preprocess.js';
import { compareAsync, formatTiming, printTable } from './harness.js';

const BENCH_DIR = new URL('../../build/bench/', import.meta.url);
const PILLOW_SCRIPT = fileURLToPath(new URL('pillow_preprocess.py', import.meta.url));
// Debian's Python, which has python3-pil and python3-numpy; the python3 on
// PATH may be another installation without them.
const DEFAULT_PYTHON = '/usr/bin/python3';

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

/** The pillow_preprocess.py child: one JSON request a line, one JSON reply a line. */
class PillowProcess {
  #child;
  #pending = [];
  #stderr = '';
  #exited = null;

  /**
   * Starts the script and waits for its first line.
   * @returns {Promise<{process: PillowProcess, pillow: string, numpy: string}>}
   * @throws {Error} when Python does not start or cannot import Pillow and numpy
   */
  static async start(python) {
    const pillow = new PillowProcess(python);
    const ready = await pillow.#next();
    return { process: pillow, pillow: ready.pillow, numpy: ready.numpy };
  }

  constructor(python) {
    this.python = python;
    this.#child = spawn(python, [PILLOW_SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] });
    // A write after the child died fails with EPIPE; the exit handler
    // below already rejects the pending requests with the reason.
    this.#child.stdin.on('error', () => {});
    this.#child.stderr.setEncoding('utf8');
    this.#child.stderr.on('data', (text) => { this.#stderr += text; });
    this.#child.on('error', (error) => this.#fail(`${python} could not be started: ${error.message}`));
    this.#child.on('exit', (code) => this.#fail(`${python} ${PILLOW_SCRIPT} exited with code ${code}` +
      (this.#stderr.trim() ? `: ${this.#stderr.trim().split('\n').at(-1)}` : '')));
    createInterface({ input: this.#child.stdout }).on('line', (line) => {
      const reply = JSON.parse(line);
      const waiter = this.#pending.shift();
      if (reply.error) waiter?.reject(new Error(`pillow_preprocess.py: ${reply.error}`));
      else waiter?.resolve(reply);
    });
  }

  #fail(message) {
    this.#exited ??= new Error(message);
    for (const waiter of this.#pending.splice(0)) waiter.reject(this.#exited);
  }

  #next() {
    if (this.#exited) return Promise.reject(this.#exited);
    return new Promise((resolve, reject) => this.#pending.push({ resolve, reject }));
  }

  /** Sends one request and resolves to its reply. */
  request(message) {
    const reply = this.#next();
    this.#child.stdin.write(`${JSON.stringify(message)}\n`);
    return reply;
  }

  close() {
    this.#child.stdin.end();
  }
}

/**
 * Hands Pillow the same RGBA bytes through a file under build/bench/ and
 * reads back its output tensor once, for the comparison with dualmem's.
 */
async function loadIntoPillow(pillow, pixels, width, height) {
  const name = `preprocess-${width}x${height}`;
  const imageFile = new URL(`${name}.rgba`, BENCH_DIR);
  const outputFile = new URL(`${name}.pillow.f32`, BENCH_DIR);
  writeFileSync(imageFile, pixels);
  try {
    await pillow.request({
      op: 'load', path: fileURLToPath(imageFile), width, height, config: JSON.parse(configJson),
    });
    await pillow.request({ op: 'dump', path: fileURLToPath(outputFile) });
    const bytes = readFileSync(outputFile);
    return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  } finally {
    rmSync(imageFile, { force: true });
    rmSync(outputFile, { force: true });
  }
}

/**
 * Times the preprocessing of each image size with every contender.
 *
 * @param {object} [options]
 * @param {number} [options.rounds=15] timed rounds per image size
 * @param {number} [options.warmup=2] untimed rounds before them
 * @param {number[][]} [options.sizes] [width, height] pairs; default 1920×1080 and 4000×3000
 * @param {string|null} [options.python='/usr/bin/python3'] Python with Pillow and
 *   numpy; null leaves Pillow out
 * @returns {Promise<{pillow: object, rows: object[]}>} `pillow` is
 *   `{version, numpy}`, or `{error}` when the child did not start. Each row
 *   has `width`, `height`, `timings` (milliseconds per image keyed `simd`,
 *   `scalar` and `pillow`, as `compareAsync` returns them), `ratios`
 *   (`scalarOverSimd`, `simdOverPillow`) and `pillowDifference` (dualmem
 *   against Pillow in 1/255 units, see compareInPixelUnits)
 */
export async function benchPreprocess(options = {}) {
  const rounds = options.rounds ?? 15;
  const warmup = options.warmup ?? 2;
  const sizes = options.sizes ?? [[1920, 1080], [4000, 3000]];
  const python = options.python === undefined ? DEFAULT_PYTHON : options.python;
  mkdirSync(BENCH_DIR, { recursive: true });

  const simd = new Preprocessor(await loadCore({ variant: 'simd' }), configJson);
  const scalar = new Preprocessor(await loadCore({ variant: 'scalar' }), configJson);
  let pillow = null;
  let pillowInfo = { error: 'left out (python: null)' };
  if (python !== null) {
    try {
      const started = await PillowProcess.start(python);
      pillow = started.process;
      pillowInfo = { version: started.pillow, numpy: started.numpy };
    } catch (error) {
      pillowInfo = { error: error.message };
      console.error(`preprocess: Pillow is left out: ${error.message}`);
    }
  }

  const rows = [];
  try {
    for (const [width, height] of sizes) {
      console.error(`preprocess: ${width}×${height}, ${rounds} rounds`);
      rows.push(await benchSize({ simd, scalar, pillow }, width, height, { rounds, warmup }));
    }
  } finally {
    pillow?.close();
    simd.dispose();
    scalar.dispose();
  }
  return { pillow: pillowInfo, rows };
}

async function benchSize({ simd, scalar, pillow }, width, height, timing) {
  const pixels = makeImage(width, height);
  const contenders = {
    simd: async () => { simd.run(pixels, width, height, 4); },
    scalar: async () => { scalar.run(pixels, width, height, 4); },
  };
  let pillowDifference = null;
  if (pillow) {
    const reference = await loadIntoPillow(pillow, pixels, width, height);
    pillowDifference = compareInPixelUnits(simd.run(pixels, width, height, 4), reference);
    contenders.pillow = async () => (await pillow.request({ op: 'run' })).ms;
  }

  const timings = await compareAsync(contenders, timing);
  const ratios = { scalarOverSimd: timings.scalar.median / timings.simd.median };
  if (timings.pillow) ratios.simdOverPillow = timings.simd.median / timings.pillow.median;
  return { width, height, timings, ratios, pillowDifference };
}

/** Prints the table of `benchPreprocess` results and the Pillow comparison. */
export function printPreprocess({ pillow, rows }) {
  const cell = (timing) => (timing ? formatTiming(timing) : '—');
  const ratio = (value) => (value === undefined ? '—' : `${value.toFixed(2)}×`);
  printTable(['image', 'WASM SIMD128', 'WASM scalar', 'Pillow', 'scalar / SIMD', 'SIMD / Pillow'],
    rows.map((row) => [
      `${row.width} × ${row.height}`, cell(row.timings.simd), cell(row.timings.scalar), cell(row.timings.pillow),
      ratio(row.ratios.scalarOverSimd), ratio(row.ratios.simdOverPillow)]));
  if (pillow.error) {
    console.log(`Pillow: ${pillow.error}`);
    return;
  }
  console.log(`Pillow ${pillow.version} with numpy ${pillow.numpy}; SIMD / Pillow is dualmem's time ` +
    'over Pillow\'s (target ≤ 1.5×).');
  for (const row of rows) {
    console.log(`dualmem against Pillow, ${row.width} × ${row.height}: ${formatDeviation(row.pillowDifference)}`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const results = await benchPreprocess();
  printPreprocess(results);
  writeFileSync(new URL('preprocess.json', BENCH_DIR),
    JSON.stringify({ date: new Date().toISOString(), ...results }, null, 2));
}
