// `dualmem classify --dir IMAGES [options]`: classifies a folder of labelled
// images with CLIP and the dual memories, and prints one prediction per image
// and a summary (accuracy, images per second, memory).
//
// The classes are the sub-folder names of IMAGES, sorted, and each image's
// label is the folder it is in. The images are processed in an order shuffled
// by --seed, so that a run over class-sorted folders is not a run of one
// class after another, and two runs with one seed see the same stream.

import { readdir, readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { parseArgs } from 'node:util';

import { ClassEmbedder } from '../src/class-embeddings.js';
import { DMN_DEFAULTS, DualMemory, PRECISIONS } from '../src/core.js';
import { decodeImage } from '../src/decode-node.js';
import { ClipEncoders } from '../src/encoders.js';
import { DualmemError } from '../src/errors.js';
import { ProgressBar } from '../src/progress-bar.js';
import { seededRandom } from '../src/seeded-random.js';
import { TEMPLATE_SETS, fillTemplates, resolveTemplates } from '../src/templates.js';
import { makeViews } from '../src/views.js';
import { modelName } from './embed.js';

const USAGE = `usage: dualmem classify --dir IMAGES [options]

  --dir IMAGES         folder with one sub-folder of images per class
  --model DIR          CLIP folder in the Hugging Face layout (default: the embedded tiny-clip)
  --mode MODE          dmn (default): text head plus dynamic memory, and the static
                       memory when --shots is given; zero-shot: text head only
  --shots DIR --k K    fill the static memory with K images per class from DIR
                       (same sub-folder layout as IMAGES), chosen with --seed
  --views N            views per image: the image and N-1 seeded random crops (default 1)
  --templates T        prompt templates: ${Object.keys(TEMPLATE_SETS).join(', ')} (default simple), or a
                       file with one template containing {} per line, or a JSON list
  --precision P        element type of memory slots: float32 (default), float16, int8
  --logit-scale S      CLIP logit scale of the memory step (default ${DMN_DEFAULTS.logitScale},
                       the library default)
  --seed S             seed of the image order, shot choice and views (default 0)
  --batch B            images per vision-tower run (default 32)
  --limit N            classify only the first N images of the shuffled order
  --threads T          ONNX Runtime threads: auto (default) or a number
  --fp32               use the float ONNX files instead of the int8 ones
  --json               print one JSON object instead of text lines
  --quiet              no progress output on stderr`;

const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.webp', '.gif', '.tif', '.tiff', '.avif']);

// Images per progress line when stderr is not a terminal.
const PROGRESS_LINE_EVERY = 1000;

function badOption(message) {
  return new DualmemError('bad_option', `${message} (see dualmem classify --help)`);
}

function parseInteger(name, text, minimum) {
  const value = Number(text);
  if (!/^\d+$/.test(String(text).trim()) || !Number.isSafeInteger(value) || value < minimum) {
    throw badOption(`--${name} is ${JSON.stringify(text)}, expected an integer >= ${minimum}`);
  }
  return value;
}

function parseCommandLine(args) {
  try {
    return parseArgs({
      args,
      allowPositionals: true,
      options: {
        dir: { type: 'string' },
        model: { type: 'string' },
        mode: { type: 'string', default: 'dmn' },
        shots: { type: 'string' },
        k: { type: 'string' },
        views: { type: 'string', default: '1' },
        templates: { type: 'string', default: 'simple' },
        precision: { type: 'string', default: 'float32' },
        'logit-scale': { type: 'string' },
        seed: { type: 'string', default: '0' },
        batch: { type: 'string', default: '32' },
        limit: { type: 'string' },
        threads: { type: 'string', default: 'auto' },
        fp32: { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        quiet: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (error) {
    throw badOption(error.message);
  }
}

/**
 * Parses and checks the command line.
 * @throws {DualmemError} `bad_option` for an unknown, missing or invalid argument
 */
export function parseOptions(args) {
  const { values, positionals } = parseCommandLine(args);
  if (values.help) return { help: true };
  if (positionals.length > 0) {
    throw badOption(`unexpected argument ${JSON.stringify(positionals[0])}; the image folder is given with --dir`);
  }
  if (values.dir === undefined) throw badOption('--dir is missing');
  if (values.mode !== 'dmn' && values.mode !== 'zero-shot') {
    throw badOption(`--mode is ${JSON.stringify(values.mode)}, expected "dmn" or "zero-shot"`);
  }
  if ((values.shots === undefined) !== (values.k === undefined)) {
    throw badOption('--shots and --k go together: --shots DIR --k K');
  }
  if (values.shots !== undefined && values.mode === 'zero-shot') {
    throw badOption('--shots fills the static memory, which --mode zero-shot does not use; use --mode dmn');
  }
  if (!Object.hasOwn(PRECISIONS, values.precision)) {
    throw badOption(`--precision is ${JSON.stringify(values.precision)}, expected float32, float16 or int8`);
  }
  let logitScale;
  if (values['logit-scale'] !== undefined) {
    logitScale = Number(values['logit-scale']);
    if (!(logitScale > 0) || !Number.isFinite(logitScale)) {
      throw badOption(`--logit-scale is ${JSON.stringify(values['logit-scale'])}, expected a positive number`);
    }
  }
  const seed = parseInteger('seed', values.seed, 0);
  if (seed > 0xffffffff) throw badOption(`--seed is ${values.seed}, expected at most ${0xffffffff}`);
  const threads = values.threads === 'auto' ? 'auto' : parseInteger('threads', values.threads, 1);
  return {
    dir: values.dir,
    model: values.model,
    mode: values.mode,
    shots: values.shots,
    k: values.k === undefined ? 0 : parseInteger('k', values.k, 1),
    views: parseInteger('views', values.views, 1),
    templates: values.templates,
    precision: values.precision,
    logitScale,
    seed,
    batch: parseInteger('batch', values.batch, 1),
    limit: values.limit === undefined ? Infinity : parseInteger('limit', values.limit, 1),
    threads,
    fp32: values.fp32,
    json: values.json,
    quiet: values.quiet,
  };
}

/** Shuffles `items` in place (Fisher-Yates) with numbers from `random`. */
export function shuffle(items, random) {
  for (let i = items.length - 1; i > 0; i -= 1) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

async function listEntries(dir, role) {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch (error) {
    throw badOption(`${role} ${dir} cannot be read: ${error.message}`);
  }
}

/**
 * Lists the class sub-folders of `dir` (sorted, hidden ones skipped) and the
 * image files in each (sorted by name). `role` names the folder in messages.
 *
 * @returns {Promise<Map<string, string[]>>} class name -> image paths
 */
export async function listClassFolders(dir, role) {
  const folders = (await listEntries(dir, role))
    .filter((entry) => entry.isDirectory() && !entry.name.startsWith('.'))
    .map((entry) => entry.name).sort();
  if (folders.length === 0) {
    throw badOption(`${role} ${dir} has no sub-folders; expected one folder of images per class`);
  }
  const classes = new Map();
  for (const name of folders) {
    const files = (await listEntries(join(dir, name), role))
      .filter((entry) => entry.isFile() && IMAGE_EXTENSIONS.has(extname(entry.name).toLowerCase()))
      .map((entry) => entry.name).sort();
    classes.set(name, files.map((file) => join(dir, name, file)));
  }
  return classes;
}

async function readTemplates(value) {
  if (Object.hasOwn(TEMPLATE_SETS, value)) return resolveTemplates(value);
  let text;
  try {
    text = await readFile(value, 'utf8');
  } catch (error) {
    throw badOption(`--templates is ${JSON.stringify(value)}, which is neither ` +
      `${Object.keys(TEMPLATE_SETS).join(' nor ')} nor a readable file (${error.message})`);
  }
  let list;
  if (text.trimStart().startsWith('[')) {
    try {
      list = JSON.parse(text);
    } catch (error) {
      throw badOption(`--templates file ${value} starts with "[" but is not valid JSON: ${error.message}`);
    }
  } else {
    list = text.split(/\r?\n/).filter((line) => line.trim() !== '');
  }
  return resolveTemplates(list);
}

/**
 * Decodes images, makes their views and encodes them in one vision-tower run.
 * An image that cannot be decoded gets `error` instead of `views`.
 *
 * @returns {Promise<({views: Float32Array}|{error: DualmemError})[]>} numViews × dim floats per image
 */
async function embedImages(encoders, paths, numViews, seed) {
  const decoded = await Promise.all(paths.map((path) => decodeImage(path).catch((error) => ({ error }))));
  const pixelValues = [];
  const results = decoded.map((image) => {
    if (image.error) return { error: image.error };
    try {
      for (const view of makeViews(image, numViews, seed)) pixelValues.push(encoders.preprocess(view));
      return { views: null };
    } catch (error) {
      return { error };
    }
  });
  if (pixelValues.length === 0) return results;

  const embeddings = await encoders.embedPixelValues(pixelValues);
  const dim = encoders.dim;
  let next = 0;
  for (const result of results) {
    if (result.error) continue;
    result.views = new Float32Array(numViews * dim);
    for (let v = 0; v < numViews; v += 1) result.views.set(embeddings[next++], v * dim);
  }
  return results;
}

/** Fills the static memory with `k` images per class of the shots folder. */
async function addShots(memory, encoders, options, classNames) {
  const folders = await listClassFolders(options.shots, 'shots folder');
  const unknown = [...folders.keys()].filter((name) => !classNames.includes(name));
  if (unknown.length > 0) {
    throw badOption(`shots folder ${options.shots} has classes ${JSON.stringify(unknown)} that ` +
      `${options.dir} lacks; its sub-folders must be among ${JSON.stringify(classNames)}`);
  }
  // A generator apart from the image order's, so that --k does not change the order.
  const random = seededRandom((options.seed ^ 0x5bd1e995) >>> 0);
  let added = 0;
  for (const [index, name] of classNames.entries()) {
    const available = folders.get(name) ?? [];
    if (available.length < options.k) {
      throw badOption(`shots folder ${options.shots} has ${available.length} images of class ` +
        `${JSON.stringify(name)}, expected at least --k ${options.k}`);
    }
    const chosen = shuffle([...available], random).slice(0, options.k);
    for (let start = 0; start < chosen.length; start += options.batch) {
      const batch = chosen.slice(start, start + options.batch);
      const results = await embedImages(encoders, batch, options.views, options.seed);
      results.forEach((result, i) => {
        if (result.error) {
          throw new DualmemError(result.error.code ?? 'image_not_decodable',
            `shot ${batch[i]}: ${result.error.message}`, { cause: result.error });
        }
        memory.addShot(index, result.views, options.views);
      });
    }
    added += chosen.length;
  }
  return added;
}

function argMax(values) {
  let best = 0;
  for (let i = 1; i < values.length; i += 1) if (values[i] > values[best]) best = i;
  return best;
}

// The library default (100) was chosen on validation data over the model's
// own learned scale (models/ACCURACY.md), so the command uses it too.
function chooseLogitScale(options) {
  if (options.logitScale !== undefined) return { value: options.logitScale, source: '--logit-scale' };
  return { value: DMN_DEFAULTS.logitScale, source: 'default' };
}

function createMemory(encoders, options, logitScale) {
  const memory = new DualMemory(encoders.core, encoders.dim, { precision: options.precision, logitScale });
  // Zero-shot reads only the text head, so the memories get no weight.
  if (options.mode === 'zero-shot') memory.setWeights({ text: 1, dynamic: 0, static: 0 });
  return memory;
}

/** Builds the shuffled stream of (path, label) over every class folder. */
async function listStream(options) {
  const folders = await listClassFolders(options.dir, 'image folder');
  const classNames = [...folders.keys()];
  const stream = [];
  classNames.forEach((name, label) => {
    for (const path of folders.get(name)) stream.push({ path, label });
  });
  if (stream.length === 0) {
    throw badOption(`image folder ${options.dir} has no images (${[...IMAGE_EXTENSIONS].join(', ')}) ` +
      'in its sub-folders');
  }
  shuffle(stream, seededRandom(options.seed));
  return { classNames, stream: stream.slice(0, Math.min(stream.length, options.limit)) };
}

/**
 * Classifies the stream, batch by batch. The next batch is decoded while the
 * current one is encoded, because sharp decodes on libuv's thread pool.
 */
async function classifyStream(memory, encoders, stream, options, onImage) {
  const load = (start) => (start < stream.length
    ? embedImages(encoders, stream.slice(start, start + options.batch).map((item) => item.path),
      options.views, options.seed)
    : null);
  let pending = load(0);
  for (let start = 0; start < stream.length; start += options.batch) {
    const results = await pending;
    pending = load(start + options.batch);
    results.forEach((result, i) => {
      const item = stream[start + i];
      if (result.error) {
        onImage(item, { error: result.error });
        return;
      }
      // The image's position in the stream is its timestamp, so that memory
      // replacement does not depend on how fast the machine is.
      const step = memory.step(result.views, options.views,
        { update: options.mode === 'dmn', timestamp: start + i });
      let probabilities = step.fused;
      if (options.mode === 'zero-shot') probabilities = options.views > 1 ? step.confident : step.text;
      const predicted = options.mode === 'zero-shot' ? argMax(probabilities) : step.label;
      onImage(item, { predicted, score: probabilities[predicted] });
    });
  }
}

function writeText(report) {
  const lines = ['path\tlabel\tpredicted\tscore'];
  for (const p of report.predictions) {
    lines.push(p.error ? `${p.path}\t${p.label}\terror\t${p.error}` : `${p.path}\t${p.label}\t${p.predicted}\t${p.score.toFixed(4)}`);
  }
  const s = report.summary;
  lines.push('',
    `model          ${report.model} (${report.precision}), ${report.classes.length} classes, dim ${report.dim}`,
    `mode           ${report.mode}, ${report.views} view(s), ${report.shotsPerClass} shot(s) per class, ` +
    `memory ${report.memoryPrecision}, logit scale ${report.logitScale}`,
    `accuracy       ${(100 * s.accuracy).toFixed(2)}% (${s.correct}/${s.classified})` +
    (s.failed > 0 ? `, ${s.failed} image(s) failed to decode` : ''),
    `speed          ${s.imagesPerSecond.toFixed(1)} images/s (${s.seconds.toFixed(1)} s; ` +
    `model and prompts ${s.loadSeconds.toFixed(1)} s, shots ${s.shotSeconds.toFixed(1)} s)`,
    `memory         DMN ${(s.memoryBytes / 1024).toFixed(1)} KiB, process RSS ${(s.rssBytes / 2 ** 20).toFixed(0)} MiB ` +
    `(peak ${(s.peakRssBytes / 2 ** 20).toFixed(0)} MiB)`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

/** Classifies the stream and counts the outcomes, per image and per class. */
async function classifyAndCount(memory, encoders, stream, classNames, options) {
  const progress = options.quiet ? null : new ProgressBar(process.stderr, stream.length,
    { label: 'classify', unit: 'img', lineEvery: PROGRESS_LINE_EVERY });
  const predictions = [];
  const perClass = classNames.map(() => ({ images: 0, correct: 0 }));
  await classifyStream(memory, encoders, stream, options, (item, outcome) => {
    const record = { path: item.path, label: classNames[item.label] };
    if (outcome.error) {
      record.error = `${outcome.error.code ?? 'error'}: ${outcome.error.message}`;
    } else {
      record.predicted = classNames[outcome.predicted];
      record.score = outcome.score;
      perClass[item.label].images += 1;
      if (outcome.predicted === item.label) perClass[item.label].correct += 1;
    }
    predictions.push(record);
    progress?.update(predictions.length);
  });
  progress?.finish();
  return { predictions, perClass };
}

/** Builds the summary of a run. `times` contains performance.now() marks in ms. */
function summarize(predictions, perClass, classNames, memory, shotImages, times) {
  const classified = perClass.reduce((sum, entry) => sum + entry.images, 0);
  const correct = perClass.reduce((sum, entry) => sum + entry.correct, 0);
  const seconds = (times.finished - times.shotsDone) / 1000;
  return {
    images: predictions.length,
    classified,
    failed: predictions.length - classified,
    correct,
    accuracy: classified > 0 ? correct / classified : 0,
    perClassAccuracy: Object.fromEntries(classNames.map((name, i) =>
      [name, perClass[i].images > 0 ? perClass[i].correct / perClass[i].images : null])),
    shotImages,
    // Test images only: model loading, prompts and shots are timed apart.
    seconds,
    imagesPerSecond: predictions.length / Math.max(seconds, 1e-9),
    loadSeconds: (times.loaded - times.started) / 1000,
    shotSeconds: (times.shotsDone - times.loaded) / 1000,
    memoryBytes: memory.memoryBytes,
    rssBytes: process.memoryUsage().rss,
    // maxRSS is in kibibytes.
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
  };
}

export async function run(args) {
  const options = parseOptions(args);
  if (options.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const { classNames, stream } = await listStream(options);
  const templates = await readTemplates(options.templates);
  const times = { started: performance.now() };

  // Model, class embeddings and memory.
  const encoders = await ClipEncoders.load(options.model, { quantized: !options.fp32, threads: options.threads });
  let memory = null;
  try {
    const logitScale = chooseLogitScale(options);
    memory = createMemory(encoders, options, logitScale.value);
    const prompts = classNames.map((name) => fillTemplates(templates, name));
    const classEmbeddings = await new ClassEmbedder(encoders).embedClasses(prompts);
    for (const embedding of classEmbeddings) memory.addClass(embedding);
    times.loaded = performance.now();

    const shotImages = options.shots === undefined ? 0 : await addShots(memory, encoders, options, classNames);
    times.shotsDone = performance.now();

    const { predictions, perClass } = await classifyAndCount(memory, encoders, stream, classNames, options);
    times.finished = performance.now();

    const report = {
      model: modelName(encoders.config, options.model),
      precision: options.fp32 ? 'fp32' : 'int8',
      dim: encoders.dim,
      classes: classNames,
      mode: options.mode,
      views: options.views,
      shotsPerClass: options.k,
      templates: templates.length,
      memoryPrecision: options.precision,
      logitScale: logitScale.value,
      logitScaleSource: logitScale.source,
      seed: options.seed,
      predictions,
      summary: summarize(predictions, perClass, classNames, memory, shotImages, times),
    };
    if (options.json) process.stdout.write(`${JSON.stringify(report)}\n`);
    else writeText(report);
  } finally {
    memory?.dispose();
    await encoders.dispose();
  }
  return 0;
}
