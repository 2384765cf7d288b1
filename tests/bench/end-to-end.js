// End-to-end benchmark in headless Chromium: classifying a JPEG with 100
// classes × 7 prompt templates on a CLIP of ViT-B/32's shape, with random
// int8 weights from models/make_random_clip.py. dualmem runs against
// transformers.js 4.3.2 on the same model folder, in one cross-origin
// isolated page:
//   dualmem          createClassifier + classify(blob), DMN memory included
//   pipeline         the zero-shot-image-classification pipeline, given the
//                    700 filled templates as candidate labels, which encodes
//                    every prompt again for each image
//   cached prompts   CLIPTextModelWithProjection once for the prompts, then
//                    AutoProcessor + CLIPVisionModelWithProjection per image
// Every contender runs ONNX Runtime Web with the same thread count and gets
// the same JPEG Blobs, made in the page. Writes build/bench/end-to-end.json
// when run alone.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';

import { launchBrowser } from '../js/helpers/browser.js';
import { startStaticServer } from '../js/helpers/static-server.js';
import { SIMPLE_TEMPLATES } from '../../web/src/templates.js';
import { compareAsync, formatTiming, printTable } from './harness.js';
import { ensureRandomClip, RANDOM_CLIP_DIR } from './random-clip.js';

const REPO_ROOT = new URL('../../', import.meta.url);
const CLASSES = JSON.parse(readFileSync(new URL('./end-to-end-classes.json', import.meta.url), 'utf8'));

/** Defaults of benchEndToEnd; see its options. */
export const END_TO_END_DEFAULTS = Object.freeze({
  images: 50,
  pipelineImages: 3,
  classes: 100,
  threads: 2,
  ortBuild: 'asyncify',
  width: 640,
  height: 480,
  seed: 1,
});

const progress = (message) => process.stderr.write(`end-to-end: ${message}\n`);

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/**
 * Returns a contender that classifies the images in turn, starting `warmup`
 * images before the end so that the timed rounds see images 0, 1, 2 ...
 * Each call resolves to the milliseconds measured in the page.
 */
function contender(call, method, count, warmup, record) {
  let calls = 0;
  return async () => {
    const index = (calls - warmup + count) % count;
    const timed = calls >= warmup;
    calls += 1;
    const outcome = await call(method, index);
    if (timed) record(index, outcome);
    return outcome.ms;
  };
}

/**
 * Runs the end-to-end comparison.
 *
 * @param {object} [options] `images` timed per contender (default 50),
 *   `pipelineImages` timed for the pipeline (default 3, because it encodes
 *   700 prompts per image; 0 skips it), `classes`: how many of the 100 class
 *   names to use (default all), `threads` of ONNX Runtime for every contender
 *   (default 2), `ortBuild` of transformers.js's ONNX Runtime: 'asyncify'
 *   (its default) or 'plain' (the build dualmem uses), `width` and `height`
 *   of the JPEGs (default 640×480), `seed` of the drawn scenes
 * @returns {Promise<object>} JSON-able results: `setup` (ms), `pipeline` and
 *   `cached` (compareAsync timings of each phase; `pipeline` is null when
 *   skipped), `stages` and `cachedStages` (median ms per stage), `ratios`
 *   (contender time / dualmem time), `memoryShare`, `agreement`
 */
export async function benchEndToEnd(options = {}) {
  const settings = { ...END_TO_END_DEFAULTS, ...options };
  const modelDir = ensureRandomClip();
  const modelId = basename(modelDir);
  const server = await startStaticServer(REPO_ROOT);
  const browser = await launchBrowser();
  try {
    const page = await browser.context.newPage();
    page.on('pageerror', (error) => progress(`page error: ${error.message}`));
    await page.goto(`${server.url}tests/bench/pages/end-to-end.html`);
    await page.waitForFunction(() => window.endToEndReady === true);
    const call = (name, ...args) => page.evaluate(([fn, rest]) => window.endToEnd[fn](...rest), [name, args]);
    if (!(await call('isolated'))) throw new Error('the benchmark page is not cross-origin isolated');

    const { images: count, pipelineImages, threads } = settings;
    const imageBytes = await call('makeImages', { count, width: settings.width, height: settings.height,
      seed: settings.seed });
    const classes = CLASSES.slice(0, settings.classes);
    const common = { classes, templates: SIMPLE_TEMPLATES, threads };
    const transformersOptions = { modelId, ortBuild: settings.ortBuild, ...common };
    const promptCount = classes.length * SIMPLE_TEMPLATES.length;
    progress(`loading dualmem and encoding ${promptCount} prompts`);
    const setup = { dualmem: await call('createDualmem', { model: `/build/bench/models/${modelId}/`, ...common }) };
    progress(`loading transformers.js and encoding ${promptCount} prompts`);
    setup.cached = await call('createCached', transformersOptions);

    // Every image, dualmem against cached prompt embeddings.
    progress(`cached-prompts phase: ${count} images`);
    const dualmemOutcomes = new Map();
    const cachedOutcomes = new Map();
    const warmup = 2;
    const cached = await compareAsync({
      dualmem: contender(call, 'runDualmem', count, warmup, (index, outcome) => {
        dualmemOutcomes.set(index, outcome);
        if (dualmemOutcomes.size % 10 === 0) progress(`${dualmemOutcomes.size} of ${count} images`);
      }),
      'transformers.js cached prompts': contender(call, 'runCached', count, warmup,
        (index, outcome) => cachedOutcomes.set(index, outcome)),
    }, { rounds: count, warmup });

    // Then the pipeline against dualmem on the first few images. There is
    // no warm-up round, because each pipeline call encodes all prompts and
    // takes seconds, so the first call's overhead stays in the samples.
    const pipelineOutcomes = new Map();
    let pipeline = null;
    if (pipelineImages > 0) {
      progress('loading the transformers.js pipeline');
      setup.pipeline = await call('createPipeline', transformersOptions);
      progress(`pipeline phase: ${pipelineImages} images of several seconds each`);
      pipeline = await compareAsync({
        dualmem: contender(call, 'runDualmem', count, 0, () => {}),
        'transformers.js pipeline': contender(call, 'runPipeline', count, 0, (index, outcome) => {
          pipelineOutcomes.set(index, outcome);
          progress(`pipeline: image ${index + 1} of ${pipelineImages}, ${(outcome.ms / 1000).toFixed(1)} s`);
        }),
      }, { rounds: pipelineImages, warmup: 0 });
      await call('disposePipeline');
      for (const [index, outcome] of pipelineOutcomes) outcome.cachedTopPrompt = await call('topPrompt', index);
    }

    return summarize({ settings, classCount: classes.length, imageBytes, setup, pipeline, cached,
      dualmemOutcomes, cachedOutcomes, pipelineOutcomes });
  } finally {
    await browser.close();
    await server.close();
  }
}

/** Pearson correlation of the log-probabilities, which are the scaled cosines up to a constant. */
function logCorrelation(p, q) {
  const x = p.map(Math.log);
  const y = q.map(Math.log);
  const mean = (v) => v.reduce((sum, value) => sum + value, 0) / v.length;
  const [mx, my] = [mean(x), mean(y)];
  let xy = 0;
  let xx = 0;
  let yy = 0;
  for (let i = 0; i < x.length; i++) {
    xy += (x[i] - mx) * (y[i] - my);
    xx += (x[i] - mx) ** 2;
    yy += (y[i] - my) ** 2;
  }
  return xy / Math.sqrt(xx * yy);
}

function summarize({ settings, classCount, imageBytes, setup, pipeline, cached, dualmemOutcomes,
  cachedOutcomes, pipelineOutcomes }) {
  const outcomes = [...dualmemOutcomes.values()];
  const stages = Object.fromEntries(['decode', 'preprocess', 'encode', 'memory', 'total']
    .map((stage) => [stage, median(outcomes.map((o) => o.timings[stage]))]));
  const cachedStages = Object.fromEntries(['decode', 'preprocess', 'encode', 'scores', 'total']
    .map((stage) => [stage, median([...cachedOutcomes.values()].map((o) => o.timings[stage]))]));
  const memoryShares = outcomes.map((o) => o.timings.memory / o.timings.total);
  const indices = [...cachedOutcomes.keys()];
  const agree = (key) => indices.filter((i) => cachedOutcomes.get(i).label === dualmemOutcomes.get(i)[key]).length;
  const correlations = indices.map((i) => logCorrelation(dualmemOutcomes.get(i).textScores,
    cachedOutcomes.get(i).scores));
  const pipelineIndices = [...pipelineOutcomes.keys()];
  return {
    date: new Date().toISOString(),
    model: RANDOM_CLIP_DIR,
    settings: { ...settings, classes: classCount, templates: SIMPLE_TEMPLATES.length },
    images: { source: 'photo-like scenes drawn in the page and encoded by Chromium as JPEG quality 0.9',
      meanBytes: Math.round(imageBytes.reduce((a, b) => a + b, 0) / imageBytes.length) },
    setup,
    pipeline,
    cached,
    stages,
    cachedStages,
    memoryShare: { median: median(memoryShares), max: Math.max(...memoryShares) },
    ratios: {
      pipelineOverDualmem: pipeline ? pipeline['transformers.js pipeline'].median / pipeline.dualmem.median : null,
      cachedOverDualmem: cached['transformers.js cached prompts'].median / cached.dualmem.median,
    },
    agreement: {
      images: indices.length,
      // dualmem's text head is plain zero-shot CLIP, as the cached contender computes it.
      zeroShotTop1: agree('textLabel') / indices.length,
      // The fused label also counts the DMN memories, which the others lack.
      fusedTop1: agree('label') / indices.length,
      zeroShotLogCorrelation: { median: median(correlations), min: Math.min(...correlations) },
      // Top-1 prompt of the 700, since the pipeline's class label averages
      // probabilities, while the cached contender averages embeddings.
      pipelinePromptTop1: pipeline ? pipelineIndices.filter((i) => pipelineOutcomes.get(i).topPrompt ===
        pipelineOutcomes.get(i).cachedTopPrompt).length / pipelineIndices.length : null,
      pipelineVsCachedTop1: pipeline ? pipelineIndices.filter((i) => pipelineOutcomes.get(i).label ===
        cachedOutcomes.get(i)?.label).length / pipelineIndices.length : null,
    },
  };
}

const percent = (share) => `${(100 * share).toFixed(1)}%`;
const ratio = (value) => `${value.toFixed(2)}×`;

/** Prints the tables of benchEndToEnd's results. */
export function printEndToEnd(results) {
  const { settings, setup, pipeline, cached, stages, ratios, agreement } = results;
  const prompts = settings.classes * settings.templates;
  console.log(`End to end in headless Chromium, ${settings.classes} classes × ${settings.templates} templates, ` +
    `${settings.threads} ONNX Runtime threads each (milliseconds per image, median and range)`);
  const pipelineRows = pipeline === null ? [] : [
    ['dualmem', pipeline.dualmem.samples.length, formatTiming(pipeline.dualmem), ratio(1)],
    ['transformers.js pipeline', pipeline['transformers.js pipeline'].samples.length,
      formatTiming(pipeline['transformers.js pipeline']), ratio(ratios.pipelineOverDualmem)],
  ];
  printTable(['contender', 'images', 'per image', 'time / dualmem'], [
    ...pipelineRows,
    ['dualmem', cached.dualmem.samples.length, formatTiming(cached.dualmem), ratio(1)],
    ['transformers.js cached prompts', cached['transformers.js cached prompts'].samples.length,
      formatTiming(cached['transformers.js cached prompts']), ratio(ratios.cachedOverDualmem)],
  ]);

  console.log('\nSetup (milliseconds, once per page)');
  const setupRows = [
    setup.dualmem.prompts === null ? ['dualmem', setup.dualmem.total.toFixed(0), '—', '— (one batch)']
      : ['dualmem', setup.dualmem.total.toFixed(0), (setup.dualmem.total - setup.dualmem.prompts).toFixed(0),
        `${setup.dualmem.prompts.toFixed(0)} (estimate, batches of 64)`],
    ['transformers.js cached prompts', setup.cached.total.toFixed(0), setup.cached.load.toFixed(0),
      `${setup.cached.prompts.toFixed(0)} (one batch of ${setup.cached.sequenceLength} tokens)`],
  ];
  if (setup.pipeline) setupRows.push(['transformers.js pipeline', setup.pipeline.load.toFixed(0),
    setup.pipeline.load.toFixed(0), 'on every image']);
  printTable(['contender', 'total', 'model files and sessions', `${prompts} prompts`], setupRows);

  console.log('\nPer stage (median milliseconds per image; DMN share: memory / total of each image)');
  const { cachedStages } = results;
  printTable(['contender', 'decode', 'preprocess', 'encode', 'memory (DMN) or scores', 'total', 'DMN share'], [
    ['dualmem', stages.decode.toFixed(1), stages.preprocess.toFixed(1), stages.encode.toFixed(1),
      stages.memory.toFixed(2), stages.total.toFixed(1),
      `${percent(results.memoryShare.median)} (max ${percent(results.memoryShare.max)})`],
    ['transformers.js cached prompts', cachedStages.decode.toFixed(1), cachedStages.preprocess.toFixed(1),
      cachedStages.encode.toFixed(1), cachedStages.scores.toFixed(2), cachedStages.total.toFixed(1), '—'],
  ]);
  const pipelineAgreement = agreement.pipelineVsCachedTop1 === null ? ''
    : `; pipeline vs cached prompts: class ${percent(agreement.pipelineVsCachedTop1)}, ` +
      `best prompt ${percent(agreement.pipelinePromptTop1)}`;
  console.log(`Top-1 agreement with transformers.js cached prompts over ${agreement.images} images: ` +
    `zero-shot head ${percent(agreement.zeroShotTop1)}, fused DMN label ${percent(agreement.fusedTop1)}` +
    `${pipelineAgreement}. Correlation of zero-shot log-probabilities: median ` +
    `${agreement.zeroShotLogCorrelation.median.toFixed(4)}, min ${agreement.zeroShotLogCorrelation.min.toFixed(4)}`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const overrides = {};
  for (const arg of process.argv.slice(2)) {
    const match = /^--(images|pipeline-images|classes|threads)=(\d+)$/.exec(arg);
    if (arg === '--ort-build=plain') {
      overrides.ortBuild = 'plain';
      continue;
    }
    if (!match) {
      throw new Error(`unknown argument ${arg}; expected --images=N, --pipeline-images=N, --classes=N, ` +
        '--threads=N or --ort-build=plain');
    }
    overrides[match[1] === 'pipeline-images' ? 'pipelineImages' : match[1]] = Number(match[2]);
  }
  const started = performance.now();
  const results = await benchEndToEnd(overrides);
  printEndToEnd(results);
  console.log(`\nend-to-end benchmark took ${((performance.now() - started) / 1000).toFixed(0)} s`);
  mkdirSync(new URL('../../build/bench/', import.meta.url), { recursive: true });
  writeFileSync(new URL('../../build/bench/end-to-end.json', import.meta.url), JSON.stringify(results, null, 2));
}
