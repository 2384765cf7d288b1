// Cold start benchmark in headless Chromium: a classifier of 1000 classes
// whose full dynamic memory (50 slots per class) is read back from IndexedDB
// on each page load, and the share of DMN in the per-image time with that
// memory. Writes build/bench/cold-start.json when run on its own.
//
// Setup (untimed) stores, per precision, a snapshot of random unit vectors
// with the model's fingerprint through classifier.memory.import, because
// encoding 1000 classes' prompts with a ViT-B/32-sized text tower would take
// minutes. The class text embeddings travel inside the snapshot, so a cold
// start encodes no prompt and never reads the prompt-embedding cache.

import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

import { launchBrowser } from '../js/helpers/browser.js';
import { startStaticServer } from '../js/helpers/static-server.js';
import { compareAsync, formatTiming, printTable } from './harness.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PAGE_PATH = 'tests/bench/pages/cold-start.html';
const SAMPLES_PATH = 'web/demo/samples';

/** Targets: the memory part of a cold start in milliseconds, and DMN's share of the per-image time. */
export const COLD_START_TARGET_MS = 500;
export const DMN_SHARE_TARGET = 0.03;

// Stages of a cold start, in the order printed. pages/cold-start.html wraps the functions that time each.
const STAGE_LABELS = {
  total: 'total (createClassifier)',
  runtimes: 'ONNX Runtime import + core WASM',
  modelFiles: 'model files from Cache Storage + metadata',
  sessions: 'ONNX sessions created',
  sha256: 'SHA-256 (cache check, fingerprints)',
  classEmbeddings: 'class embeddings (prompt cache)',
  indexedDbRead: 'IndexedDB read',
  copyIn: 'copy into WASM heap',
  coreParse: 'core parse + Gram rebuild',
  memory: 'memory part (read + restore)',
  memoryExposed: 'memory part not hidden by model load',
  other: 'other',
};

const IMAGE_STAGES = ['decode', 'preprocess', 'encode', 'memory', 'total'];

function summarize(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return { median: sorted[Math.floor(sorted.length / 2)], min: sorted[0], max: sorted[sorted.length - 1], samples: values };
}

/** Splits one cold start's raw stage times into the stages of STAGE_LABELS. */
function splitStages({ totalMs, stages }) {
  const modelFiles = stages.model - stages.sessions - stages.sha256;
  const memory = stages.indexedDbRead + stages.restore;
  // The page gives the union of the stages, because the memory read overlaps the model load.
  const known = stages.known;
  return {
    total: totalMs,
    runtimes: stages.runtimes,
    modelFiles,
    sessions: stages.sessions,
    sha256: stages.sha256,
    classEmbeddings: stages.classEmbeddings,
    indexedDbRead: stages.indexedDbRead,
    copyIn: stages.restore - stages.coreParse,
    coreParse: stages.coreParse,
    memory,
    memoryExposed: stages.memoryExposed,
    other: totalMs - known,
  };
}

/** Returns the model folder as a path under the served repository root. */
function servedPath(folder) {
  const absolute = resolve(folder);
  if (!absolute.startsWith(REPO_ROOT)) {
    throw new Error(`model folder ${absolute} is outside the repository ${REPO_ROOT}, which the page server serves`);
  }
  return `/${relative(REPO_ROOT, absolute).split(sep).join('/')}/`;
}

function samplePaths(count) {
  const names = readdirSync(resolve(REPO_ROOT, SAMPLES_PATH)).filter((name) => name.endsWith('.png')).sort();
  if (names.length < count) throw new Error(`${SAMPLES_PATH} has ${names.length} images, expected at least ${count}`);
  // Evenly spaced, so that every class of the samples shows up.
  return Array.from({ length: count }, (_, i) => `/${SAMPLES_PATH}/${names[Math.floor((i * names.length) / count)]}`);
}

const progress = (message) => process.stderr.write(`cold-start: ${message}\n`);

/**
 * Measures the cold start of a classifier whose full dynamic memory is
 * stored in IndexedDB, and the DMN share of the per-image time after it.
 *
 * @param {object} [options]
 * @param {string} [options.model] model folder inside the repository;
 *   default the ViT-B/32-shaped random CLIP of random-clip.js
 * @param {number} [options.classes=1000]
 * @param {number} [options.capacity=50] dynamic slots per class
 * @param {string[]} [options.precisions=['float32', 'int8']]
 * @param {number} [options.rounds=5] timed cold starts per precision,
 *   alternating the precisions
 * @param {number} [options.warmup=1] untimed cold starts per precision first
 * @param {number} [options.images=10] timed images per precision
 * @param {number} [options.warmupImages=2] untimed images classified first
 * @returns {Promise<object>} plain JSON: setup, coldStart and perImage per
 *   precision, timings in milliseconds as the harness reports them
 */
export async function benchColdStart(options = {}) {
  const started = Date.now();
  const numClasses = options.classes ?? 1000;
  const capacity = options.capacity ?? 50;
  const precisions = options.precisions ?? ['float32', 'int8'];
  const rounds = options.rounds ?? 5;
  const warmup = options.warmup ?? 1;
  const imageCount = options.images ?? 10;
  const warmupImages = options.warmupImages ?? 2;
  let modelFolder = options.model;
  if (modelFolder === undefined) {
    const { ensureRandomClip } = await import('./random-clip.js');
    modelFolder = await ensureRandomClip();
  }
  const model = servedPath(modelFolder);
  const classNames = Array.from({ length: numClasses }, (_, i) => `class ${String(i).padStart(4, '0')}`);
  const namespaceOf = (precision) => `cold-start-${precision}`;

  const server = await startStaticServer(REPO_ROOT);
  const browser = await launchBrowser();
  try {
    const page = await browser.context.newPage();
    const open = async () => {
      await page.goto(`${server.url}${PAGE_PATH}`);
      await page.waitForFunction(() => window.coldStart !== undefined);
    };
    const call = (name, argument) => page.evaluate(([fn, arg]) => window.coldStart[fn](arg), [name, argument]);

    // Setup: one stored memory per precision, with the IndexedDB bytes that each adds.
    const setup = {};
    await open();
    let indexedDbBefore = (await call('storageEstimate')).indexedDB ?? 0;
    for (const [i, precision] of precisions.entries()) {
      progress(`storing ${numClasses} × ${capacity} ${precision} slots in IndexedDB`);
      await open();
      const prepared = await call('prepare', { model, precision, namespace: namespaceOf(precision), classNames, capacity, seed: 1 + i });
      await open();
      const estimate = await call('storageEstimate');
      setup[precision] = { ...prepared, indexedDbBytes: (estimate.indexedDB ?? 0) - indexedDbBefore, estimate };
      indexedDbBefore = estimate.indexedDB ?? 0;
    }

    // Cold starts, alternating the precisions. Each one is a fresh load of the page.
    const stageSamples = Object.fromEntries(precisions.map((precision) => [precision, []]));
    const coldStartOnce = async (precision) => {
      await open();
      const measured = await call('coldStart', { model, precision, namespace: namespaceOf(precision), classNames });
      const expectedSlots = numClasses * capacity;
      if (measured.classes !== numClasses || measured.dynamicSlots !== expectedSlots || measured.precision !== precision) {
        throw new Error(`the ${precision} cold start loaded ${measured.classes} classes and ${measured.dynamicSlots} ` +
          `${measured.precision} dynamic slots, expected ${numClasses} and ${expectedSlots} ${precision}`);
      }
      stageSamples[precision].push({ ...splitStages(measured), memoryBytes: measured.memoryBytes });
      return measured.totalMs;
    };
    progress(`${warmup + rounds} cold starts per precision`);
    await compareAsync(Object.fromEntries(precisions.map((precision) => [precision, () => coldStartOnce(precision)])),
      { rounds, warmup });
    const coldStart = {};
    for (const precision of precisions) {
      const timed = stageSamples[precision].slice(warmup);
      coldStart[precision] = {
        memoryBytes: timed[0].memoryBytes,
        stages: Object.fromEntries(Object.keys(STAGE_LABELS).map((stage) => [stage, summarize(timed.map((s) => s[stage]))])),
      };
    }

    // Per-image time with the full memory, after one more cold start.
    const paths = samplePaths(warmupImages + imageCount);
    const perImage = {};
    for (const precision of precisions) {
      progress(`classifying ${warmupImages + imageCount} images with the full ${precision} memory`);
      await open();
      await call('coldStart', { model, precision, namespace: namespaceOf(precision), classNames });
      const results = (await call('classify', paths)).slice(warmupImages);
      perImage[precision] = {
        images: results.length,
        inserted: results.filter((r) => r.inserted).length,
        ...Object.fromEntries(IMAGE_STAGES.map((stage) => [stage, summarize(results.map((r) => r.timings[stage]))])),
        step: summarize(results.map((r) => r.stepMs)),
        wall: summarize(results.map((r) => r.wallMs)),
        memoryShare: summarize(results.map((r) => r.timings.memory / r.timings.total)),
        stepShare: summarize(results.map((r) => r.stepMs / r.timings.total)),
      };
    }

    return {
      model, classes: numClasses, capacity, slots: numClasses * capacity, dim: setup[precisions[0]].dim,
      imagePaths: paths.slice(warmupImages), setup, coldStart, perImage, elapsedMs: Date.now() - started,
    };
  } finally {
    await browser.close();
    await server.close();
  }
}

const megabytes = (bytes) => `${(bytes / 1e6).toFixed(1)} MB`;
const percent = (share) => `${(share * 100).toFixed(2)} %`;

/** Prints the tables of a benchColdStart result. */
export function printColdStart(results) {
  const precisions = Object.keys(results.coldStart);
  console.log(`Cold start: ${results.classes} classes, ${results.slots} dynamic slots × ${results.dim} dims ` +
    `from IndexedDB, model ${results.model} (milliseconds, median and range)`);
  printTable(['stage', ...precisions], Object.entries(STAGE_LABELS).map(([stage, label]) => [
    label, ...precisions.map((precision) => formatTiming(results.coldStart[precision].stages[stage]))]));
  for (const precision of precisions) {
    const { total, memory } = results.coldStart[precision].stages;
    console.log(`${precision}: memory part / ${COLD_START_TARGET_MS} ms target ${(memory.median / COLD_START_TARGET_MS).toFixed(2)}, ` +
      `whole cold start / target ${(total.median / COLD_START_TARGET_MS).toFixed(2)}`);
  }

  console.log('\nStored memory per precision');
  printTable(['precision', 'snapshot', 'IndexedDB (estimate)', 'WASM memory', 'setup: build', 'setup: import'],
    precisions.map((precision) => {
      const setup = results.setup[precision];
      return [precision, megabytes(setup.snapshotBytes), megabytes(setup.indexedDbBytes),
        megabytes(results.coldStart[precision].memoryBytes), `${(setup.buildMs / 1000).toFixed(1)} s`,
        `${(setup.importMs / 1000).toFixed(1)} s`];
    }));

  console.log(`\nPer image with the full memory (${results.perImage[precisions[0]].images} images, milliseconds)`);
  printTable(['stage', ...precisions], [
    ...IMAGE_STAGES.map((stage) => [`timings.${stage}`, ...precisions.map((p) => formatTiming(results.perImage[p][stage]))]),
    ['DualMemory.step alone', ...precisions.map((p) => formatTiming(results.perImage[p].step))],
    ['classify() wall time', ...precisions.map((p) => formatTiming(results.perImage[p].wall))],
    ['timings.memory / total', ...precisions.map((p) => percent(results.perImage[p].memoryShare.median))],
    ['step alone / total', ...precisions.map((p) => percent(results.perImage[p].stepShare.median))],
    ['images inserted', ...precisions.map((p) => String(results.perImage[p].inserted))],
  ]);
  // timings.memory also covers the Web Lock and the IndexedDB meta read that
  // precede each step of a stored memory, so the step alone is shown as well.
  for (const precision of precisions) {
    const { memoryShare, stepShare } = results.perImage[precision];
    console.log(`${precision}: DMN share / ${percent(DMN_SHARE_TARGET)} target: timings.memory ` +
      `${(memoryShare.median / DMN_SHARE_TARGET).toFixed(2)}, step alone ${(stepShare.median / DMN_SHARE_TARGET).toFixed(2)}`);
  }
}

function parseArguments(argv) {
  const options = {};
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (flag === '--model') options.model = value;
    else if (['--classes', '--capacity', '--rounds', '--warmup', '--images'].includes(flag)) options[flag.slice(2)] = Number(value);
    else if (flag === '--precisions') options.precisions = value.split(',');
    else throw new Error(`unknown argument ${flag}; expected --model DIR, --classes N, --capacity N, ` +
      '--rounds N, --warmup N, --images N or --precisions a,b');
  }
  return options;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const results = await benchColdStart(parseArguments(process.argv.slice(2)));
  printColdStart(results);
  console.log(`\nbenchmark took ${(results.elapsedMs / 1000).toFixed(0)} s`);
  mkdirSync(new URL('../../build/bench/', import.meta.url), { recursive: true });
  writeFileSync(new URL('../../build/bench/cold-start.json', import.meta.url),
    JSON.stringify({ date: new Date().toISOString(), ...results }, null, 2));
}
