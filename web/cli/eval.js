// `dualmem eval`: measures the accuracy of the library's modes on the clean
// and shifted Fashion-MNIST test sets and prints one table. Shots come from
// the validation split, the last 5,000 training images, which the embedded
// model never trained on. They come from the variant with the same shift as
// the test set, because a user's labelled examples come from their own images.
// `--tune` and `--tune-train` run the grids that chose the defaults, on
// validation sets only.

import { spawnSync } from 'node:child_process';
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { averageUnitEmbeddings } from '../src/class-embeddings.js';
import { DMN_DEFAULTS, TRAIN_DEFAULTS } from '../src/core.js';
import { ClipEncoders } from '../src/encoders.js';
import { DualmemError } from '../src/errors.js';
import { embedSet, imageModelKey, listSet } from '../src/eval/embedding-cache.js';
import { EMBEDDED_MODEL_URL } from '../src/model-files.js';
import {
  drawShots, runStream, seededRandom, shuffledIndices, zeroShotCorrect,
} from '../src/eval/streams.js';

const USAGE = `usage: dualmem eval [options]

  --model DIR            CLIP folder (default: the embedded tiny-clip)
  --sets DIR             test sets from models/make_eval_sets.py (default build/eval-sets;
                         built when missing)
  --validation-sets DIR  the same sets made from the validation split (default
                         build/validation-sets; built when missing); shots come from here
  --cache-dir DIR        embedding cache (default build/eval-cache)
  --seeds N              seeds of shot choice and stream order (default 3)
  --limit N              use only the first N images of each set
  --views-subset N       images of each set in the 8-view columns (default 2000)
  --tune                 run the validation grid that chose the DMN defaults instead
  --tune-train           run the validation grid that chose TRAIN_DEFAULTS instead
  --json                 print one JSON object instead of the table`;

// The prompt templates that the embedded model was trained with (its model card).
const TINY_CLIP_TEMPLATES = [
  'a photo of a {}.', 'a photo of the {}.', 'a black and white photo of a {}.',
  'a grayscale photo of a {}.', 'a low resolution photo of a {}.',
  'a low resolution photo of the {}.', 'a blurry photo of a {}.', 'a pixelated photo of a {}.',
  'a product photo of a {}.', 'a catalogue image of a {}.', 'a close-up photo of a {}.',
  'a small photo of a {}.', 'a picture of a {}.', 'an image of a {}.',
  'a photo of a {}, a fashion item.', '{}',
];

const PYTHON = '/usr/bin/python3';
const MAKE_SETS = new URL('../../models/make_eval_sets.py', import.meta.url).pathname;

// Views per image in the multi-view columns.
const MANY_VIEWS = 8;

// Columns of the table: key, heading, and what the cell holds.
const COLUMNS = [
  ['zeroShot', 'zero-shot', 'text head only, 1 view'],
  ['dmn1', 'DMN zs 1v', 'DMN zero-shot (text + dynamic memory), 1 view'],
  ['dmn1Subset', 'DMN zs 1v*', 'the same on the 8-view subset'],
  ['dmn8Subset', 'DMN zs 8v*', 'DMN zero-shot, 8 views, on the 8-view subset'],
  ['free1', 'free 1-shot', 'DMN training-free, 1 shot per class'],
  ['free4', 'free 4-shot', 'DMN training-free, 4 shots per class'],
  ['free16', 'free 16-shot', 'DMN training-free, 16 shots per class'],
  ['trained4', 'trained 4-shot', 'DMN trained (TRAIN_DEFAULTS), 4 shots per class'],
  ['trained16', 'trained 16-shot', 'DMN trained (TRAIN_DEFAULTS), 16 shots per class'],
  ['int8Dmn1', 'int8 zs 1v', 'DMN zero-shot 1 view with int8 memory slots'],
  ['int8Free16', 'int8 free 16', 'DMN training-free 16-shot with int8 memory slots'],
  ['adaptiveDmn1', 'adapt zs 1v', 'DMN zero-shot 1 view, adaptive (entropy) weights'],
  ['adaptiveFree16', 'adapt free 16', 'DMN training-free 16-shot, adaptive weights'],
  ['wrongPseudo', 'wrong pseudo', 'wrong pseudo-labels among dynamic-memory inserts (DMN zs 1v)'],
];

function badOption(message) {
  return new DualmemError('bad_option', `${message} (see dualmem eval --help)`);
}

function parseInteger(name, text, minimum) {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!/^\d+$/.test(String(text).trim()) || !Number.isSafeInteger(value) || value < minimum) {
    throw badOption(`--${name} is ${JSON.stringify(text)}, expected an integer >= ${minimum}`);
  }
  return value;
}

function parse(args) {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        model: { type: 'string' },
        sets: { type: 'string', default: 'build/eval-sets' },
        'validation-sets': { type: 'string', default: 'build/validation-sets' },
        'cache-dir': { type: 'string', default: 'build/eval-cache' },
        seeds: { type: 'string', default: '3' },
        limit: { type: 'string' },
        'views-subset': { type: 'string', default: '2000' },
        tune: { type: 'boolean', default: false },
        'tune-train': { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (error) {
    throw badOption(error.message);
  }
  return {
    ...values,
    seeds: parseInteger('seeds', values.seeds, 1),
    limit: parseInteger('limit', values.limit, 1) ?? Infinity,
    viewsSubset: parseInteger('views-subset', values['views-subset'], 1),
    validationSets: values['validation-sets'],
    tuneTrain: values['tune-train'],
    cacheDir: values['cache-dir'],
  };
}

/** Builds the sets with models/make_eval_sets.py unless DIR/manifest.json exists. */
async function ensureSets(dir, split) {
  const manifest = join(dir, 'manifest.json');
  try {
    await access(manifest);
  } catch {
    const how = `${PYTHON} models/make_eval_sets.py --out ${dir}` +
      (split === 'validation' ? ' --split validation' : '');
    process.stderr.write(`dualmem eval: building ${dir} (${how})\n`);
    const result = spawnSync(PYTHON, [MAKE_SETS, '--out', dir, '--split', split],
      { stdio: ['ignore', 'ignore', 'pipe'] });
    if (result.error || result.status !== 0) {
      throw new DualmemError('not_found', `the ${split} sets ${dir} are missing and could not be ` +
        `built: ${result.error?.message ?? String(result.stderr).trim().split('\n').at(-1)}. Build them with \`${how}\` ` +
        '(Python 3 with numpy and Pillow, and Fashion-MNIST in /usr/share/datasets/fashion-mnist ' +
        'from the Debian package dataset-fashion-mnist), or pass their folder');
    }
  }
  return JSON.parse(await readFile(manifest, 'utf8'));
}

async function classEmbeddings(encoders, classes) {
  const result = [];
  for (const name of classes) {
    const prompts = TINY_CLIP_TEMPLATES.map((template) => template.replaceAll('{}', name));
    result.push(averageUnitEmbeddings(await encoders.embedTexts(prompts)));
  }
  return result;
}

/** Returns the model's learned logit scale from config.json, else DMN_DEFAULTS.logitScale. */
export function modelLogitScale(config) {
  const scale = config?.trained_logit_scale;
  return Number.isFinite(scale) && scale > 0 ? scale : DMN_DEFAULTS.logitScale;
}

function progress(label) {
  return (done, total) => {
    if (done === total || done % 2048 === 0) process.stderr.write(`  embedding ${label}: ${done}/${total}\n`);
  };
}

async function loadEmbedded(encoders, root, split, name, classes, count, numViews, cacheDir) {
  const set = await listSet(join(root, name), classes, count);
  const embeddings = await embedSet(encoders, set, {
    numViews, cacheDir, cacheKey: encoders.cacheKey, name: `${split}-${name}`, onProgress: progress(`${split} ${name} ${numViews}v`),
  });
  return { ...set, embeddings, numViews };
}

function restrict(set, count) {
  const dim = set.embeddings.length / set.labels.length / set.numViews;
  return { ...set, labels: set.labels.subarray(0, count),
    embeddings: set.embeddings.subarray(0, count * set.numViews * dim) };
}

/** Runs every column on one set and returns the cell values in percent. */
function evaluateSet(core, context, test, subset1, subset8, shotsSet, seeds) {
  const { text, config } = context;
  const dim = text[0].length;
  const sums = {};
  const add = (key, value) => { sums[key] = (sums[key] ?? 0) + value / seeds; };
  const percent = (r) => 100 * r.correct / r.count;
  sums.zeroShot = 100 * zeroShotCorrect(test.embeddings, 1, test.labels, text, dim) / test.labels.length;
  for (let seed = 0; seed < seeds; seed += 1) {
    const order = shuffledIndices(test.labels.length, seededRandom(seed));
    const subsetOrder = shuffledIndices(subset1.labels.length, seededRandom(seed));
    const base = { text, config, numViews: 1, embeddings: test.embeddings, labels: test.labels, order };
    const shotsOf = (k) => ({ embeddings: shotsSet.embeddings,
      indices: drawShots(shotsSet.labels, text.length, k, seededRandom(1000 + seed)) });

    const dmn1 = runStream(core, base);
    add('dmn1', percent(dmn1));
    add('adaptiveDmn1', 100 * dmn1.adaptiveCorrect / dmn1.count);
    add('wrongPseudo', 100 * dmn1.wrongInserted / Math.max(1, dmn1.inserted));
    add('dmn1Subset', percent(runStream(core, { ...base, embeddings: subset1.embeddings,
      labels: subset1.labels, order: subsetOrder })));
    add('dmn8Subset', percent(runStream(core, { ...base, numViews: MANY_VIEWS,
      embeddings: subset8.embeddings, labels: subset8.labels, order: subsetOrder })));
    const shots = { 1: shotsOf(1), 4: shotsOf(4), 16: shotsOf(16) };
    add('free1', percent(runStream(core, { ...base, shots: shots[1] })));
    add('free4', percent(runStream(core, { ...base, shots: shots[4] })));
    const free16 = runStream(core, { ...base, shots: shots[16] });
    add('free16', percent(free16));
    add('adaptiveFree16', 100 * free16.adaptiveCorrect / free16.count);
    const train = { ...TRAIN_DEFAULTS, seed };
    add('trained4', percent(runStream(core, { ...base, shots: shots[4], train })));
    add('trained16', percent(runStream(core, { ...base, shots: shots[16], train })));
    const int8 = { ...config, precision: 'int8' };
    add('int8Dmn1', percent(runStream(core, { ...base, config: int8 })));
    add('int8Free16', percent(runStream(core, { ...base, config: int8, shots: shots[16] })));
  }
  return sums;
}

function formatTable(rows, meta) {
  const head = ['set', ...COLUMNS.map(([, heading]) => heading)];
  const lines = [head];
  for (const row of rows) {
    lines.push([row.set, ...COLUMNS.map(([key]) => row.cells[key].toFixed(2))]);
  }
  const widths = head.map((_, i) => Math.max(...lines.map((line) => line[i].length)));
  const text = lines.map((line) => line.map((cell, i) =>
    (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  '));
  const notes = [
    `top-1 (%) of ${meta.model}, int8 towers; logit scale ${meta.config.logitScale}, beta ` +
      `${meta.config.beta}, selection ratio ${meta.config.selectionRatio}, weights text/dynamic/static ` +
      `${meta.config.weights.text}/${meta.config.weights.dynamic}/${meta.config.weights.static}`,
    `mean of ${meta.seeds} seed(s) of stream order and shot choice; shots from the validation ` +
      'variant of the same set',
    `* the first ${meta.subsetCount} images of each set (8-view columns and their 1-view comparison)`,
    ...COLUMNS.map(([, heading, help]) => `${heading}: ${help}`),
  ];
  return `${text.join('\n')}\n\n${notes.join('\n')}\n`;
}

function meanRow(name, rows) {
  const cells = {};
  for (const [key] of COLUMNS) cells[key] = rows.reduce((s, r) => s + r.cells[key], 0) / rows.length;
  return { set: name, cells };
}

/** Returns the library's DMN configuration, as createClassifier uses it. */
export function defaultConfig() {
  return {
    logitScale: DMN_DEFAULTS.logitScale, beta: DMN_DEFAULTS.beta,
    capacity: DMN_DEFAULTS.capacity, selectionRatio: DMN_DEFAULTS.selectionRatio,
    weights: { ...DMN_DEFAULTS.weights },
  };
}

export async function run(args) {
  const options = parse(args);
  if (options.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const started = performance.now();
  // The grids read validation sets only.
  const tuning = options.tune || options.tuneTrain;
  const validationManifest = await ensureSets(options.validationSets, 'validation');
  const testManifest = tuning ? null : await ensureSets(options.sets, 'test');
  const classes = (testManifest ?? validationManifest).classes;
  const encoders = await ClipEncoders.load(options.model, { quantized: true, threads: 1 });
  encoders.cacheKey = await imageModelKey(options.model ?? fileURLToPath(EMBEDDED_MODEL_URL));
  try {
    const text = await classEmbeddings(encoders, classes);
    const config = defaultConfig();
    const load = (name, count, views) => loadEmbedded(encoders, options.validationSets, 'validation',
      name, classes, count, views, options.cacheDir);
    if (options.tuneTrain) {
      const { tuneTraining } = await import('../src/eval/tune.js');
      const result = await tuneTraining(encoders.core, { text, config, load, trainDefaults: TRAIN_DEFAULTS,
        sets: Object.keys(validationManifest.sets), limit: options.limit });
      process.stdout.write(options.json ? `${JSON.stringify(result)}\n` : result.text);
      return 0;
    }
    if (options.tune) {
      const { tune } = await import('../src/eval/tune.js');
      const result = await tune(encoders.core, { text, config, load,
        modelScale: modelLogitScale(encoders.config),
        sets: Object.keys(validationManifest.sets), limit: options.limit, subset: options.viewsSubset });
      process.stdout.write(options.json ? `${JSON.stringify(result)}\n` : result.text);
      return 0;
    }
    const rows = [];
    let subsetCount = 0;
    for (const name of Object.keys(testManifest.sets)) {
      const test = await loadEmbedded(encoders, options.sets, 'test', name, classes, options.limit, 1,
        options.cacheDir);
      const count = Math.min(options.viewsSubset, test.labels.length);
      subsetCount = count;
      const subset8 = await loadEmbedded(encoders, options.sets, 'test', name, classes, count, MANY_VIEWS,
        options.cacheDir);
      const shotsSet = await loadEmbedded(encoders, options.validationSets, 'validation', name, classes,
        Math.min(options.limit, 5000), 1, options.cacheDir);
      const cells = evaluateSet(encoders.core, { text, config }, test, restrict(test, count), subset8,
        shotsSet, options.seeds);
      rows.push({ set: name, images: test.labels.length, cells });
      process.stderr.write(`  ${name} done after ${((performance.now() - started) / 1000).toFixed(0)} s\n`);
    }
    const shifted = rows.filter((row) => row.set !== 'clean');
    if (shifted.length > 0) rows.push(meanRow('mean shifted', shifted));
    rows.push(meanRow('mean all', rows.filter((row) => !row.set.startsWith('mean'))));
    const meta = { model: encoders.config?._name_or_path || 'tiny-clip', config, seeds: options.seeds,
      subsetCount, seconds: (performance.now() - started) / 1000 };
    if (options.json) {
      process.stdout.write(`${JSON.stringify({ ...meta, columns: COLUMNS.map(([key, heading, help]) =>
        ({ key, heading, help })), rows })}\n`);
    } else {
      process.stdout.write(formatTable(rows, meta));
    }
  } finally {
    await encoders.dispose();
  }
  return 0;
}
