// createClassifier under Node: option checks before any download, the error
// codes with the inputs that cause them, and every method and mode on the
// embedded model, in the main thread and in a worker_threads worker.

import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, test } from 'node:test';

import { CLIP_IMAGENET_TEMPLATES, DualmemError, createClassifier } from '../../web/src/index.js';
import { fuseFrozen } from '../../web/src/classifier.js';
import { makeViews, viewSeed } from '../../web/src/views.js';
import { MODEL_DIR, modelSkipReason, sampleClasses, sampleImages } from './helpers/samples.js';

const modelSkip = modelSkipReason();
// Quick start-up for most tests; the default model and the default 80
// templates are tested once.
const FAST = { model: MODEL_DIR, templates: 'simple', onWarning: () => {} };

async function rejectsWithCode(promise, code, pattern) {
  await assert.rejects(promise, (error) => {
    assert.ok(error instanceof DualmemError, `expected a DualmemError, got ${error?.name}: ${error?.message}`);
    assert.equal(error.code, code, error.message);
    if (pattern) assert.match(error.message, pattern);
    return true;
  });
}

function probabilitySum(map) {
  return Object.values(map).reduce((sum, p) => sum + p, 0);
}

describe('createClassifier options', () => {
  const BAD_OPTIONS = [
    [{ classes: [] }, 'classes'],
    [{ classes: 'bolt' }, 'classes'],
    [{ classes: ['bolt', 'bolt'] }, 'classes[1].name'],
    [{ classes: [{ name: '' }] }, 'classes[0].name'],
    [{ classes: [{ name: 'bolt', prompts: [] }] }, 'classes[0].prompts'],
    [{ classes: [{ name: 'bolt', colour: 'red' }] }, 'classes[0].colour'],
    [{ classes: ['bolt'], mode: 'fast' }, 'mode'],
    [{ classes: ['bolt'], templates: 'imagenet' }, 'templates'],
    [{ classes: ['bolt'], templates: ['a photo'] }, 'templates'],
    [{ classes: ['bolt'], memory: { precision: 'int4' } }, 'memory.precision'],
    [{ classes: ['bolt'], memory: { capacityPerClass: 0 } }, 'memory.capacityPerClass'],
    [{ classes: ['bolt'], memory: { capacity: 10 } }, 'memory.capacity'],
    [{ classes: ['bolt'], memory: { weights: { text: 0 } } }, 'memory.weights.text'],
    [{ classes: ['bolt'], memory: { weights: { dynamic: -1 } } }, 'memory.weights.dynamic'],
    [{ classes: ['bolt'], views: 0 }, 'views'],
    [{ classes: ['bolt'], views: 1.5 }, 'views'],
    [{ classes: ['bolt'], threads: 0 }, 'threads'],
    [{ classes: ['bolt'], threads: 'many' }, 'threads'],
    [{ classes: ['bolt'], worker: 'yes' }, 'worker'],
    [{ classes: ['bolt'], cache: 'sometimes' }, 'cache'],
    [{ classes: ['bolt'], keepResults: -1 }, 'keepResults'],
    [{ classes: ['bolt'], model: 42 }, 'model'],
    [{ classes: ['bolt'], onProgress: 'log' }, 'onProgress'],
    [{ classes: ['bolt'], modle: 'x' }, 'modle'],
  ];

  for (const [options, option] of BAD_OPTIONS) {
    test(`bad ${option} raises bad_option (${JSON.stringify(options).slice(0, 60)})`, async () => {
      await assert.rejects(createClassifier(options), (error) => {
        assert.equal(error.code, 'bad_option', error.message);
        assert.equal(error.option, option);
        assert.ok(error.message.startsWith(option), error.message);
        return true;
      });
    });
  }

  test('bad_option names the value and the allowed values', async () => {
    await rejectsWithCode(createClassifier({ classes: ['bolt'], mode: 'fast' }), 'bad_option',
      /^mode is "fast", expected one of "adaptive", "shadow", "frozen"$/);
  });

  test('bad option is raised before any download', async () => {
    let requests = 0;
    const server = createServer((request, response) => {
      requests += 1;
      response.writeHead(404).end();
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const model = `http://127.0.0.1:${server.address().port}/model/`;
      await rejectsWithCode(createClassifier({ model, classes: ['bolt'], views: 100 }), 'bad_option');
      assert.equal(requests, 0);
      await rejectsWithCode(createClassifier({ ...FAST, model, classes: ['bolt'] }), 'model_not_found',
        /config\.json returned HTTP 404/);
      assert.ok(requests > 0);
    } finally {
      server.close();
    }
  });

  test('missing model folder raises model_not_found', async () => {
    await rejectsWithCode(createClassifier({ model: '/nonexistent/dualmem-model', classes: ['bolt'] }),
      'model_not_found', /config\.json is missing/);
  });

  test('folder that is not a CLIP raises model_not_clip', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'dualmem-not-clip-'));
    try {
      await writeFile(join(folder, 'config.json'), JSON.stringify({ model_type: 'bert' }));
      await rejectsWithCode(createClassifier({ model: folder, classes: ['bolt'] }), 'model_not_clip',
        /model_type "bert", expected "clip"/);
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });

  test('cache true without Cache Storage raises storage_unavailable', async () => {
    await rejectsWithCode(createClassifier({ classes: ['bolt'], cache: true }), 'storage_unavailable',
      /no Cache Storage/);
  });

  test('clip-imagenet has the 80 distinct CLIP templates', () => {
    assert.equal(CLIP_IMAGENET_TEMPLATES.length, 80);
    assert.equal(new Set(CLIP_IMAGENET_TEMPLATES).size, 80);
    assert.ok(CLIP_IMAGENET_TEMPLATES.every((template) => template.includes('{}')));
  });
});

describe('test-time views', () => {
  const image = { pixels: Uint8Array.from({ length: 28 * 20 }, (_, i) => i & 0xff), width: 28, height: 20, channels: 1 };

  test('views are the image and seeded crops', () => {
    const views = makeViews(image, 5, 7);
    assert.equal(views.length, 5);
    assert.equal(views[0], image);
    for (const view of views.slice(1)) {
      assert.ok(view.width >= 1, `crop width ${view.width}`);
      assert.ok(view.width <= 28, `crop width ${view.width}`);
      assert.ok(view.height >= 1, `crop height ${view.height}`);
      assert.ok(view.height <= 20, `crop height ${view.height}`);
      assert.equal(view.pixels.length, view.width * view.height);
    }
    assert.deepEqual(makeViews(image, 5, 7), views, 'same seed and pixels gave other crops');
    assert.notDeepEqual(makeViews(image, 5, 8).slice(1), views.slice(1));
  });

  test('RGBA views match RGB views', () => {
    const rgb = { pixels: Uint8Array.from({ length: 30 * 22 * 3 }, (_, i) => (i * 7) & 0xff), width: 30, height: 22,
      channels: 3 };
    const rgba = { ...rgb, channels: 4, pixels: new Uint8Array(30 * 22 * 4) };
    for (let p = 0; p < 30 * 22; p += 1) {
      rgba.pixels.set(rgb.pixels.subarray(p * 3, p * 3 + 3), p * 4);
      rgba.pixels[p * 4 + 3] = 255;
    }
    assert.equal(viewSeed(rgba, 7), viewSeed(rgb, 7));
    const boxes = (views) => views.map(({ width, height }) => [width, height]);
    assert.deepEqual(boxes(makeViews(rgba, 5, 7)), boxes(makeViews(rgb, 5, 7)));
  });

  test('frozen fusion leaves the dynamic head out', () => {
    const step = { text: Float32Array.of(0.6, 0.4), static: Float32Array.of(0.2, 0.8) };
    const fused = fuseFrozen(step, { text: 1, dynamic: 0.3, static: 1 });
    assert.ok(Math.abs(fused[0] - 0.4) < 1e-6, `fused[0] is ${fused[0]}, expected 0.4 ± 1e-6`);
    assert.ok(Math.abs(fused[1] - 0.6) < 1e-6, `fused[1] is ${fused[1]}, expected 0.6 ± 1e-6`);
    assert.deepEqual([...fuseFrozen({ ...step, static: null }, { text: 1, static: 1 })], [...step.text]);
  });
});

describe('classifier on the embedded model', { skip: modelSkip ?? false }, () => {
  const classes = modelSkip ? [] : sampleClasses();
  const stream = modelSkip ? [] : sampleImages(3);
  const shots = modelSkip ? [] : sampleImages(2, 3);

  async function labelsOf(classifier, images) {
    const results = [];
    for (const image of images) results.push(await classifier.classify(image.path));
    return results;
  }

  test('result has label, score, top, sources and timings', async () => {
    const progress = [];
    const classifier = await createClassifier({
      classes, onWarning: () => {}, onProgress: (detail) => progress.push(detail),
    });
    try {
      assert.ok(progress.some((p) => p.stage === 'download' && p.file === 'onnx/vision_model_quantized.onnx'));
      assert.ok(progress.some((p) => p.stage === 'prompts' && p.loaded === p.total));
      const result = await classifier.classify(stream[0].path);
      assert.equal(result.id, 1);
      assert.ok(classes.includes(result.label));
      assert.equal(result.top.length, Math.min(5, classes.length));
      assert.equal(result.top[0].label, result.label);
      assert.equal(result.top[0].score, result.score);
      for (const source of ['text', 'dynamic']) {
        assert.deepEqual(Object.keys(result.sources[source]), classes);
        const sum = probabilitySum(result.sources[source]);
        assert.ok(Math.abs(sum - 1) < 1e-4, `${source} probabilities sum to ${sum}, expected 1 ± 1e-4`);
      }
      assert.equal(result.sources.static, null, 'static source without shots');
      for (const key of ['decode', 'preprocess', 'encode', 'memory', 'total']) {
        assert.ok(result.timings[key] >= 0, `timings.${key} is ${result.timings[key]}`);
      }
    } finally {
      await classifier.dispose();
    }
  });

  test('zero-shot labels of the samples are mostly right', async (t) => {
    const classifier = await createClassifier({ classes, mode: 'frozen', ...FAST });
    try {
      const images = sampleImages(5);
      const results = await labelsOf(classifier, images);
      const correct = results.filter((result, i) => result.label === images[i].className).length;
      t.diagnostic(`frozen zero-shot: ${correct}/${images.length} correct`);
      assert.ok(correct / images.length >= 0.6, `${correct}/${images.length} correct, expected at least 60%`);
    } finally {
      await classifier.dispose();
    }
  });

  test('every Node input type gives the same result', async () => {
    const classifier = await createClassifier({ classes, mode: 'frozen', ...FAST });
    try {
      const { path } = stream[1];
      const bytes = await readFile(path);
      const inputs = {
        path, 'file URL': pathToFileURL(path), Buffer: bytes, Uint8Array: new Uint8Array(bytes),
        ArrayBuffer: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length), Blob: new Blob([bytes]),
      };
      const reference = await classifier.classify(path);
      for (const [kind, input] of Object.entries(inputs)) {
        const result = await classifier.classify(input);
        assert.equal(result.label, reference.label, kind);
        assert.equal(result.score, reference.score, kind);
      }
    } finally {
      await classifier.dispose();
    }
  });

  test('frozen mode writes no dynamic memory', async () => {
    const classifier = await createClassifier({ classes, mode: 'frozen', ...FAST });
    try {
      const updates = [];
      classifier.addEventListener('memoryupdate', (event) => updates.push(event.detail));
      const results = await labelsOf(classifier, stream);
      assert.ok(results.every((result) => result.sources.dynamic === null));
      const stats = classifier.stats();
      assert.equal(stats.mode, 'frozen');
      assert.equal(stats.classified, stream.length);
      assert.equal(stats.agreement, null);
      assert.ok(stats.classes.every((entry) => entry.dynamic === 0), JSON.stringify(stats.classes));
      assert.equal(updates.length, 0);
    } finally {
      await classifier.dispose();
    }
  });

  test('shadow labels equal frozen labels and adaptive runs alongside', async () => {
    const run = async (mode) => {
      const classifier = await createClassifier({ classes, mode, ...FAST });
      try {
        return { results: await labelsOf(classifier, stream), stats: classifier.stats() };
      } finally {
        await classifier.dispose();
      }
    };
    const frozen = await run('frozen');
    const shadow = await run('shadow');
    const adaptive = await run('adaptive');
    assert.deepEqual(shadow.results.map((r) => r.label), frozen.results.map((r) => r.label));
    assert.deepEqual(shadow.results.map((r) => r.adaptive.label), adaptive.results.map((r) => r.label),
      'the shadow prediction differs from adaptive mode on the same stream');
    assert.ok(shadow.results.every((r) => r.sources.dynamic !== null));
    assert.ok(shadow.stats.classes.some((entry) => entry.dynamic > 0), 'shadow mode wrote no dynamic memory');
    const agreed = shadow.results.filter((r) => r.label === r.adaptive.label).length / stream.length;
    assert.ok(Math.abs(shadow.stats.agreement - agreed) < 1e-12,
      `agreement ${shadow.stats.agreement}, expected ${agreed}`);
    assert.equal(adaptive.results[0].adaptive, undefined);
  });

  test('adaptive mode fills dynamic memory and reports memoryupdate', async () => {
    const classifier = await createClassifier({ classes, memory: { precision: 'int8' }, ...FAST });
    try {
      const updates = [];
      classifier.addEventListener('memoryupdate', (event) => updates.push(event.detail));
      await labelsOf(classifier, stream);
      const stats = classifier.stats();
      const dynamic = stats.classes.reduce((sum, entry) => sum + entry.dynamic, 0);
      assert.ok(dynamic > 0);
      assert.equal(updates.filter((u) => u.memory === 'dynamic').length, dynamic);
      assert.equal(stats.precision, 'int8');
      assert.ok(stats.bytes > 0);
    } finally {
      await classifier.dispose();
    }
  });

  test('addExamples fills static memory', async () => {
    const classifier = await createClassifier({ classes, ...FAST });
    try {
      const className = shots[0].className;
      const mine = shots.filter((image) => image.className === className).map((image) => image.path);
      const added = await classifier.addExamples(className, mine);
      assert.deepEqual(added, { className, added: mine.length, shots: mine.length, durable: false });
      const stats = classifier.stats();
      assert.equal(stats.classes.find((entry) => entry.name === className).static, mine.length);
      const result = await classifier.classify(stream[0].path);
      assert.notEqual(result.sources.static, null);
      await rejectsWithCode(classifier.addExamples('no such class', mine), 'unknown_class', /no such class/);
      await rejectsWithCode(classifier.addExamples(className, [Buffer.from('not an image')]), 'image_not_decodable');
      assert.equal(classifier.stats().classes.find((entry) => entry.name === className).static, mine.length,
        'a failed addExamples changed the memory');
    } finally {
      await classifier.dispose();
    }
  });

  test('correct turns a result into a labelled shot', async () => {
    const classifier = await createClassifier({ classes, keepResults: 2, ...FAST });
    try {
      const first = await classifier.classify(stream[0].path);
      const second = await classifier.classify(stream[1].path);
      const third = await classifier.classify(stream[2].path);
      const corrected = await classifier.correct(second.id, stream[1].className);
      assert.deepEqual(corrected, { id: second.id, label: stream[1].className, shots: 1, durable: false });
      assert.equal(classifier.stats().corrected, 1);
      await rejectsWithCode(classifier.correct(second.id, stream[1].className), 'unknown_result', /already corrected/);
      await rejectsWithCode(classifier.correct(first.id, stream[0].className), 'unknown_result', /last 2 results/);
      await rejectsWithCode(classifier.correct(12345, stream[0].className), 'unknown_result');
      await rejectsWithCode(classifier.correct(third.id, 'no such class'), 'unknown_class');
    } finally {
      await classifier.dispose();
    }
  });

  test('addClass and removeClass change the labels', async () => {
    const classifier = await createClassifier({ classes: classes.slice(0, 3), ...FAST });
    try {
      const updates = [];
      classifier.addEventListener('memoryupdate', (event) => updates.push(event.detail.reason));
      await classifier.addClass({ name: classes[3], prompts: [`a photo of a ${classes[3]}.`] });
      await classifier.addClass(classes[4]);
      assert.deepEqual(classifier.classes, classes.slice(0, 5));
      await classifier.removeClass(classes[0]);
      assert.deepEqual(classifier.classes, classes.slice(1, 5));
      const result = await classifier.classify(stream[0].path);
      assert.deepEqual(Object.keys(result.sources.text), classes.slice(1, 5));
      assert.deepEqual(updates, ['addClass', 'addClass', 'removeClass', ...(updates.length > 3 ? updates.slice(3) : [])]);
      await rejectsWithCode(classifier.addClass(classes[1]), 'duplicate_class');
      await rejectsWithCode(classifier.addClass({ name: 'x', prompts: 'a photo' }), 'bad_option');
      await rejectsWithCode(classifier.removeClass('no such class'), 'unknown_class');
    } finally {
      await classifier.dispose();
    }
  });

  test('several views give repeatable results', async () => {
    const classifier = await createClassifier({ classes, views: 4, mode: 'frozen', ...FAST });
    try {
      const a = await classifier.classify(stream[0].path);
      const b = await classifier.classify(stream[0].path);
      assert.equal(a.score, b.score);
      assert.equal(classifier.stats().views, 4);
    } finally {
      await classifier.dispose();
    }
  });

  test('undecodable image raises image_not_decodable', async () => {
    const classifier = await createClassifier({ classes, ...FAST });
    try {
      await rejectsWithCode(classifier.classify(Buffer.from('this is not an image')), 'image_not_decodable');
      assert.equal(classifier.stats().classified, 0);
    } finally {
      await classifier.dispose();
    }
  });

  test('missing core WebAssembly raises wasm_unavailable', async () => {
    const wasmUrl = new URL('../../web/wasm/no_such_core.wasm', import.meta.url);
    await rejectsWithCode(createClassifier({ classes, wasmUrl, ...FAST }), 'wasm_unavailable', /no_such_core\.wasm/);
  });

  test('calls after dispose raise disposed', async () => {
    const classifier = await createClassifier({ classes, ...FAST });
    const pending = classifier.classify(stream[0].path);
    const disposed = classifier.dispose();
    assert.ok(classes.includes((await pending).label), 'a call made before dispose did not finish');
    await disposed;
    await rejectsWithCode(classifier.classify(stream[0].path), 'disposed');
  });

  test('worker gives the main thread labels and keeps error codes', async () => {
    const settings = { classes, mode: 'adaptive', ...FAST };
    const local = await createClassifier(settings);
    const worker = await createClassifier({ ...settings, worker: true });
    try {
      const events = [];
      worker.addEventListener('memoryupdate', (event) => events.push(event.detail));
      const localResults = await labelsOf(local, stream);
      const workerResults = await Promise.all(stream.map((image) => worker.classify(image.path)));
      assert.deepEqual(workerResults.map((r) => r.label), localResults.map((r) => r.label));
      assert.deepEqual(workerResults.map((r) => r.id), localResults.map((r) => r.id), 'calls ran out of order');
      assert.ok(events.length > 0, 'no memoryupdate event came from the worker');

      await worker.addExamples(shots[0].className, [await readFile(shots[0].path)]);
      await worker.correct(workerResults[0].id, stream[0].className);
      await worker.addClass('scarf');
      await worker.removeClass('scarf');
      const stats = worker.stats();
      assert.deepEqual(stats.classes.map((entry) => entry.name), classes);
      assert.equal(stats.classified, stream.length);
      assert.equal(stats.corrected, 1);
      assert.deepEqual(worker.classes, classes);

      await rejectsWithCode(worker.addExamples('no such class', [shots[0].path]), 'unknown_class');
      await rejectsWithCode(worker.correct(999, classes[0]), 'unknown_result');
      await rejectsWithCode(worker.classify(Buffer.from('not an image')), 'image_not_decodable');
    } finally {
      await local.dispose();
      await worker.dispose();
    }
    await rejectsWithCode(worker.classify(stream[0].path), 'disposed');
  });

  test('worker reports load errors with their code', async () => {
    await rejectsWithCode(createClassifier({ model: '/nonexistent/dualmem-model', classes, worker: true }),
      'model_not_found');
  });
});

if (modelSkip) test('classifier on the embedded model', { skip: modelSkip }, () => {});
