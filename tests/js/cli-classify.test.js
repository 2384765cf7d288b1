// `dualmem classify` and `dualmem embed` as a user runs them: a child process
// on the embedded model and the Fashion-MNIST samples. The JSON summary must
// hold the accuracy, speed and memory, the order must follow the seed, and
// bad arguments must end with exit code 2 and a message naming the argument.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';

import { ProgressBar } from '../../web/src/progress-bar.js';
import { MODEL_DIR, SAMPLES_DIR, modelSkipReason, sampleClasses } from './helpers/samples.js';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../../web/bin/dualmem.js', import.meta.url));
const MODEL = fileURLToPath(MODEL_DIR);
const SAMPLES = fileURLToPath(SAMPLES_DIR);
const skip = modelSkipReason();

// Lowest zero-shot top-1 accepted on the samples, as in encoders-node.test.js.
const MIN_SAMPLE_ACCURACY = 0.8;

/** Runs the CLI; returns { code, stdout, stderr } whatever the exit code. */
async function dualmem(...args) {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { maxBuffer: 64 * 2 ** 20 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    if (typeof error.code !== 'number') throw error;
    return { code: error.code, stdout: error.stdout, stderr: error.stderr };
  }
}

async function classifyJson(...args) {
  const result = await dualmem('classify', '--model', MODEL, '--dir', SAMPLES, '--json', '--quiet', ...args);
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout);
}

async function countSamples() {
  let count = 0;
  for (const name of sampleClasses()) count += (await readdir(join(SAMPLES, name))).filter((f) => f.endsWith('.png')).length;
  return count;
}

describe('dualmem classify', { skip: skip ?? false }, () => {
  const reports = {};
  let sampleCount;

  before(async () => {
    sampleCount = await countSamples();
    reports['zero-shot'] = await classifyJson('--mode', 'zero-shot');
    reports.dmn = await classifyJson('--mode', 'dmn');
  });

  for (const mode of ['zero-shot', 'dmn']) {
    test(`${mode} summary covers every sample`, (t) => {
      const { summary, predictions, classes } = reports[mode];
      t.diagnostic(`${mode}: accuracy ${(100 * summary.accuracy).toFixed(1)}% on ${summary.images} images, ` +
        `${summary.imagesPerSecond.toFixed(1)} images/s, DMN memory ${summary.memoryBytes} bytes, ` +
        `RSS ${(summary.rssBytes / 2 ** 20).toFixed(0)} MiB`);
      assert.deepEqual(classes, sampleClasses());
      assert.equal(summary.images, sampleCount);
      assert.equal(summary.failed, 0);
      assert.equal(predictions.length, sampleCount);
      assert.equal(new Set(predictions.map((p) => p.path)).size, sampleCount);
      assert.equal(summary.correct, predictions.filter((p) => p.predicted === p.label).length);
      assert.ok(summary.imagesPerSecond > 0, `imagesPerSecond ${summary.imagesPerSecond}`);
      assert.ok(summary.memoryBytes > 0, `memoryBytes ${summary.memoryBytes}`);
      assert.ok(summary.rssBytes > 0, `rssBytes ${summary.rssBytes}`);
      for (const p of predictions) {
        assert.ok(classes.includes(p.predicted), `${p.path}: predicted ${p.predicted}`);
        assert.ok(p.score > 0, `${p.path}: score ${p.score}, expected above 0`);
        assert.ok(p.score <= 1, `${p.path}: score ${p.score}, expected at most 1`);
      }
    });
  }

  test('zero-shot reaches the sample accuracy', () => {
    const { accuracy } = reports['zero-shot'].summary;
    assert.ok(accuracy >= MIN_SAMPLE_ACCURACY, `top-1 ${accuracy}, expected >= ${MIN_SAMPLE_ACCURACY}`);
  });

  test('dmn mode fills the dynamic memory', () => {
    // Each stored test image adds a vector, so the memory grows past the
    // zero-shot memory, which holds only the class embeddings.
    assert.ok(reports.dmn.summary.memoryBytes > reports['zero-shot'].summary.memoryBytes,
      `dmn ${reports.dmn.summary.memoryBytes} bytes, zero-shot ${reports['zero-shot'].summary.memoryBytes} bytes`);
    assert.ok(reports.dmn.summary.accuracy >= MIN_SAMPLE_ACCURACY - 0.1,
      `dmn top-1 ${reports.dmn.summary.accuracy}, expected >= ${MIN_SAMPLE_ACCURACY - 0.1}`);
  });

  test('seed fixes the image order', async () => {
    const again = await classifyJson('--mode', 'zero-shot', '--limit', '30');
    const other = await classifyJson('--mode', 'zero-shot', '--limit', '30', '--seed', '7');
    const first = reports['zero-shot'].predictions.slice(0, 30).map((p) => p.path);
    assert.deepEqual(again.predictions.map((p) => p.path), first);
    assert.notDeepEqual(other.predictions.map((p) => p.path), first);
    // The stream is shuffled: its first 30 images are not all of one class.
    assert.ok(new Set(again.predictions.map((p) => p.label)).size > 3);
  });

  test('shots fill the static memory', async () => {
    const report = await classifyJson('--shots', SAMPLES, '--k', '2', '--views', '2', '--limit', '20');
    assert.equal(report.shotsPerClass, 2);
    assert.equal(report.views, 2);
    assert.equal(report.summary.shotImages, 2 * sampleClasses().length);
    assert.equal(report.summary.images, 20);
  });

  test('text output ends with the summary', async () => {
    const result = await dualmem('classify', '--model', MODEL, '--dir', SAMPLES, '--limit', '12', '--quiet');
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout.trimEnd().split('\n');
    assert.equal(lines[0], 'path\tlabel\tpredicted\tscore');
    assert.equal(lines.slice(1).filter((line) => line.includes('\t')).length, 12);
    assert.match(result.stdout, /^accuracy +\d+\.\d\d% \(\d+\/12\)$/m);
    assert.match(result.stdout, /^speed +\d+\.\d images\/s/m);
    assert.match(result.stdout, /^memory +DMN \d+\.\d KiB, process RSS \d+ MiB/m);
  });
});

describe('dualmem classify arguments', () => {
  let folder;

  before(async () => {
    folder = await mkdtemp(join(tmpdir(), 'dualmem-cli-'));
    await writeFile(join(folder, 'templates.txt'), 'a photo without a placeholder\n');
  });

  after(async () => {
    await rm(folder, { recursive: true, force: true });
  });

  const cases = [
    ['missing --dir', [], /--dir is missing/],
    ['unknown option', ['--dir', SAMPLES, '--colour', 'red'], /Unknown option '--colour'/],
    ['unknown mode', ['--dir', SAMPLES, '--mode', 'tta'], /--mode is "tta", expected "dmn" or "zero-shot"/],
    ['--k without --shots', ['--dir', SAMPLES, '--k', '4'], /--shots and --k go together/],
    ['shots in zero-shot mode', ['--dir', SAMPLES, '--mode', 'zero-shot', '--shots', SAMPLES, '--k', '1'],
      /--mode zero-shot does not use/],
    ['zero views', ['--dir', SAMPLES, '--views', '0'], /--views is "0", expected an integer >= 1/],
    ['fractional batch', ['--dir', SAMPLES, '--batch', '2.5'], /--batch is "2.5", expected an integer >= 1/],
    ['unknown precision', ['--dir', SAMPLES, '--precision', 'int4'], /--precision is "int4"/],
    ['zero logit scale', ['--dir', SAMPLES, '--logit-scale', '0'], /--logit-scale is "0", expected a positive number/],
    ['missing image folder', ['--dir', '/nonexistent/dualmem'], /image folder \/nonexistent\/dualmem cannot be read/],
    ['positional argument', [SAMPLES], /the image folder is given with --dir/],
  ];
  for (const [name, args, pattern] of cases) {
    test(`${name} exits with code 2`, async () => {
      const result = await dualmem('classify', ...args);
      assert.equal(result.code, 2, `exit code ${result.code}, stdout ${result.stdout.slice(0, 200)}`);
      assert.match(result.stderr, /^dualmem: bad_option: /);
      assert.match(result.stderr, pattern);
    });
  }

  test('folder without class folders exits with code 2', async () => {
    const result = await dualmem('classify', '--dir', folder);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /has no sub-folders; expected one folder of images per class/);
  });

  test('template without placeholder exits with code 2', { skip: skip ?? false }, async () => {
    const result = await dualmem('classify', '--dir', SAMPLES, '--templates', join(folder, 'templates.txt'));
    assert.equal(result.code, 2);
    assert.match(result.stderr, /templates\[0\] is "a photo without a placeholder", expected a string containing "\{\}"/);
  });

  test('shots folder with too few images exits with code 2', { skip: skip ?? false }, async () => {
    const result = await dualmem('classify', '--model', MODEL, '--dir', SAMPLES, '--shots', SAMPLES, '--k', '1000');
    assert.equal(result.code, 2);
    assert.match(result.stderr, /has \d+ images of class "[^"]+", expected at least --k 1000/);
  });
});

describe('dualmem embed', { skip: skip ?? false }, () => {
  test('prints image and text embeddings', async () => {
    const image = join(SAMPLES, sampleClasses()[0], (await readdir(join(SAMPLES, sampleClasses()[0])))[0]);
    const result = await dualmem('embed', '--model', MODEL, '--image', image, '--text', 'a photo of a bag.',
      '--text', 'a photo of a coat.');
    assert.equal(result.code, 0, result.stderr);
    const output = JSON.parse(result.stdout);
    assert.equal(output.precision, 'int8');
    assert.deepEqual(output.images, [image]);
    assert.deepEqual(output.texts, ['a photo of a bag.', 'a photo of a coat.']);
    assert.equal(output.image_embeds.length, 1);
    assert.equal(output.text_embeds.length, 2);
    for (const embedding of [...output.image_embeds, ...output.text_embeds]) {
      assert.equal(embedding.length, output.dim);
      assert.ok(embedding.every(Number.isFinite));
    }
  });

  test('nothing to embed exits with code 2', async () => {
    const result = await dualmem('embed', '--model', MODEL);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /embed needs at least one --image or --text/);
  });
});

describe('ProgressBar', () => {
  function fakeStream(isTTY) {
    const writes = [];
    return { isTTY, writes, write: (text) => writes.push(text) };
  }

  test('terminal redraws one line in place', () => {
    const stream = fakeStream(true);
    let clock = 0;
    const bar = new ProgressBar(stream, 10, { label: 'classify', unit: 'img', now: () => clock });
    for (let done = 1; done <= 10; done += 1) {
      clock += 1000;
      bar.update(done);
    }
    bar.finish();
    assert.ok(stream.writes.every((text) => text.startsWith('\r')), JSON.stringify(stream.writes));
    assert.equal(stream.writes.at(-1), `\rclassify [${'#'.repeat(30)}] 10/10 100.0% 1.0 img/s eta 0s\n`);
  });

  test('pipe gets a line every lineEvery steps', () => {
    const stream = fakeStream(false);
    let clock = 0;
    const bar = new ProgressBar(stream, 2500, { unit: 'img', lineEvery: 1000, now: () => clock });
    for (let done = 1; done <= 2500; done += 1) {
      clock += 10;
      bar.update(done);
    }
    bar.finish();
    assert.deepEqual(stream.writes, [
      '1000/2500 40.0% 100.0 img/s eta 15s\n',
      '2000/2500 80.0% 100.0 img/s eta 5s\n',
    ]);
  });

  test('pipe without lineEvery stays silent', () => {
    const stream = fakeStream(false);
    const bar = new ProgressBar(stream, 5);
    for (let done = 1; done <= 5; done += 1) bar.update(done);
    bar.finish();
    assert.deepEqual(stream.writes, []);
  });
});
