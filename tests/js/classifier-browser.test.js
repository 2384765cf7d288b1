// createClassifier in headless Chromium, in the page and in a module worker.
// The tests cover every method and mode on the embedded model, every input
// type, the error codes and Cache Storage of model files and prompt
// embeddings. Labels must equal those under Node for the same images and
// settings.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { createClassifier } from '../../web/src/index.js';
import { browserSkipReason, launchBrowser } from './helpers/browser.js';
import { MODEL_DIR, modelSkipReason, sampleClasses, sampleImages } from './helpers/samples.js';
import { startStaticServer } from './helpers/static-server.js';

const REPO_ROOT = new URL('../../', import.meta.url);
const skip = browserSkipReason() ?? modelSkipReason();
const MODEL_PATH = '/models/tiny-clip/';

describe('classifier in headless Chromium', { skip: skip ?? false }, () => {
  const classes = skip ? [] : sampleClasses();
  const stream = skip ? [] : sampleImages(3);
  const shots = skip ? [] : sampleImages(1, 3);
  const paths = stream.map((image) => `/${image.relative}`);
  const settings = { classes, templates: 'simple', mode: 'adaptive', model: MODEL_PATH };
  let server;
  let browser;
  let page;
  let nodeLabels;
  const requested = [];

  const call = (name, ...args) => page.evaluate(([fn, rest]) => window.dualmemTest[fn](...rest), [name, args]);

  async function openPage() {
    page = await browser.context.newPage();
    await page.goto(`${server.url}tests/js/pages/classifier.html`);
    await page.waitForFunction(() => window.dualmemTestReady === true);
  }

  async function create(options) {
    const created = await call('create', options);
    assert.equal(created.error, undefined, JSON.stringify(created.error));
    return created;
  }

  async function expectError(promise, code) {
    const outcome = await promise;
    assert.ok(outcome?.error, `expected ${code}, got ${JSON.stringify(outcome).slice(0, 200)}`);
    assert.equal(outcome.error.name, 'DualmemError', outcome.error.message);
    assert.equal(outcome.error.code, code, outcome.error.message);
    return outcome.error;
  }

  before(async () => {
    nodeLabels = {};
    for (const mode of ['adaptive', 'frozen']) {
      const reference = await createClassifier({ ...settings, mode, model: MODEL_DIR, onWarning: () => {} });
      nodeLabels[mode] = [];
      for (const image of stream) nodeLabels[mode].push((await reference.classify(image.path)).label);
      await reference.dispose();
    }

    server = await startStaticServer(REPO_ROOT);
    browser = await launchBrowser();
    browser.context.on('request', (request) => requested.push(request.url()));
    // A folder whose config.json describes another architecture, for model_not_clip.
    await browser.context.route('**/not-a-clip/config.json', (route) => route.fulfill({
      status: 200, contentType: 'application/json', body: JSON.stringify({ model_type: 'bert' }),
    }));
    await openPage();
  });

  after(async () => {
    await browser?.close();
    await server?.close();
  });

  for (const worker of [false, true]) {
    const where = worker ? 'worker' : 'page';
    // One classifier per mode, shared by the tests below in their order.
    const handles = {};

    test(`${where}: labels equal the Node labels`, async () => {
      for (const mode of ['adaptive', 'frozen', 'shadow']) handles[mode] = (await create({ ...settings, mode, worker })).handle;
      const adaptive = await call('classify', handles.adaptive, paths);
      assert.equal(adaptive.error, undefined, JSON.stringify(adaptive.error));
      assert.deepEqual(adaptive.map((r) => r.label), nodeLabels.adaptive);
      const frozen = await call('classifyAtOnce', handles.frozen, paths);
      assert.deepEqual(frozen.map((r) => r.label), nodeLabels.frozen);
      assert.deepEqual(frozen.map((r) => r.id), paths.map((_, i) => i + 1), 'calls made at once ran out of order');
    });

    test(`${where}: shadow mode reports both predictions`, async () => {
      const shadow = await call('classify', handles.shadow, paths);
      assert.deepEqual(shadow.map((r) => r.label), nodeLabels.frozen);
      assert.deepEqual(shadow.map((r) => r.adaptive.label), nodeLabels.adaptive);
      assert.ok(shadow.every((r) => r.sources.dynamic !== null));
      const stats = await call('stats', handles.shadow);
      assert.ok(stats.classes.some((entry) => entry.dynamic > 0), 'shadow mode wrote no dynamic memory');
      const agreed = shadow.filter((r) => r.label === r.adaptive.label).length / shadow.length;
      assert.ok(Math.abs(stats.agreement - agreed) < 1e-12, `agreement ${stats.agreement}, expected ${agreed}`);
      const frozenStats = await call('stats', handles.frozen);
      assert.ok(frozenStats.classes.every((entry) => entry.dynamic === 0));
      assert.equal(frozenStats.agreement, null);
    });

    test(`${where}: every input type gives the Blob result`, async () => {
      const [reference] = await call('classify', handles.frozen, [paths[0]], 'blob');
      assert.ok(reference.sources.dynamic === null);
      for (const kind of ['file', 'url', 'URL', 'arraybuffer', 'img', 'bitmap', 'canvas', 'imagedata']) {
        const results = await call('classify', handles.frozen, [paths[0]], kind);
        assert.equal(results.error, undefined, `${kind}: ${JSON.stringify(results.error)}`);
        assert.equal(results[0].label, reference.label, kind);
        assert.ok(Math.abs(results[0].score - reference.score) < 1e-6,
          `${kind}: score ${results[0].score}, expected ${reference.score} ± 1e-6`);
      }
    });

    test(`${where}: every method works and reports memoryupdate`, async () => {
      const handle = handles.adaptive;
      const [result] = await call('classify', handle, [paths[0]]);
      const added = await call('addExamples', handle, shots[0].className, [`/${shots[0].relative}`]);
      assert.deepEqual(added, { className: shots[0].className, added: 1, shots: 1, durable: false });
      const expectedShots = shots[0].className === stream[0].className ? 2 : 1;
      assert.deepEqual(await call('correct', handle, result.id, stream[0].className),
        { id: result.id, label: stream[0].className, shots: expectedShots, durable: false });
      assert.deepEqual(await call('addClass', handle, { name: 'scarf', prompts: ['a photo of a scarf.'] }),
        [...classes, 'scarf']);
      const remaining = [...classes.slice(0, -1), 'scarf'];
      assert.deepEqual(await call('removeClass', handle, classes.at(-1)), remaining);
      const [after] = await call('classify', handle, [paths[1]]);
      assert.notEqual(after.sources.static, null);
      assert.deepEqual(Object.keys(after.sources.text), remaining);

      const stats = await call('stats', handle);
      assert.equal(stats.classified, paths.length + 2);
      assert.equal(stats.corrected, 1);
      assert.deepEqual(stats.classes.map((entry) => entry.name), remaining);
      const reasons = (await call('events', handle)).filter((e) => e.type === 'memoryupdate').map((e) => e.detail.reason);
      assert.deepEqual(reasons.filter((reason) => reason !== 'classify'), ['examples', 'correct', 'addClass', 'removeClass']);
      assert.ok(reasons.includes('classify'), 'no memoryupdate for a dynamic insertion');
    });

    test(`${where}: method errors keep their codes`, async () => {
      const handle = handles.adaptive;
      await expectError(call('addExamples', handle, 'no such class', [paths[0]]), 'unknown_class');
      await expectError(call('removeClass', handle, 'no such class'), 'unknown_class');
      await expectError(call('correct', handle, 999, classes[1]), 'unknown_result');
      await expectError(call('addClass', handle, 'scarf'), 'duplicate_class');
      await expectError(call('addClass', handle, { name: 'hat', prompts: [] }), 'bad_option');
      await expectError(call('classifyBytes', handle, 'not an image'), 'image_not_decodable');
      await expectError(call('classify', handle, ['/no/such/image.png'], 'url'), 'not_found');
      for (const mode of Object.keys(handles)) assert.equal(await call('dispose', handles[mode]), true);
      await expectError(call('classify', handle, [paths[0]]), 'disposed');
    });

    test(`${where}: load errors keep their codes`, async () => {
      await expectError(call('create', { ...settings, worker, mode: 'fast' }), 'bad_option');
      await expectError(call('create', { ...settings, worker, model: '/no/such/model/' }), 'model_not_found');
      await expectError(call('create', { ...settings, worker, model: '/not-a-clip/' }), 'model_not_clip');
      await expectError(call('create', { ...settings, worker, ortWasmPaths: '/no/such/folder/' }), 'wasm_unavailable');
    });
  }

  test('worker script that fails to load raises worker_unavailable', async () => {
    const missing = (route) => route.fulfill({ status: 404, contentType: 'text/plain', body: 'not found' });
    await browser.context.route('**/web/src/worker.js', missing);
    try {
      await expectError(call('create', { ...settings, worker: true }), 'worker_unavailable');
    } finally {
      await browser.context.unroute('**/web/src/worker.js', missing);
    }
  });

  test('cache true without Cache Storage raises storage_unavailable', async () => {
    const isolated = await browser.context.newPage();
    try {
      await isolated.goto(`${server.url}tests/js/pages/classifier.html`);
      await isolated.waitForFunction(() => window.dualmemTestReady === true);
      await isolated.evaluate(() => window.dualmemTest.hideCacheStorage());
      const outcome = await isolated.evaluate((options) => window.dualmemTest.create(options), { ...settings, cache: true });
      assert.equal(outcome.error?.code, 'storage_unavailable', JSON.stringify(outcome));
    } finally {
      await isolated.close();
    }
  });

  test('model files and prompt embeddings come from Cache Storage after a reload', async () => {
    // The page tests above stored the model files and the prompt embeddings.
    const onnxUrl = `${server.url}models/tiny-clip/onnx/vision_model_quantized.onnx`;
    await page.reload();
    await page.waitForFunction(() => window.dualmemTestReady === true);
    const before = requested.filter((url) => url === onnxUrl).length;
    const reloaded = await create({ ...settings, mode: 'frozen' });
    assert.equal(requested.filter((url) => url === onnxUrl).length, before, 'the model file was downloaded again');
    assert.ok(!reloaded.progress.some((p) => p.stage === 'prompts'), 'prompts were encoded again');

    assert.equal(await call('corruptCachedFile', onnxUrl), true);
    await page.reload();
    await page.waitForFunction(() => window.dualmemTestReady === true);
    const repaired = await create({ ...settings, mode: 'frozen', cache: true });
    assert.equal(requested.filter((url) => url === onnxUrl).length, before + 1, 'the corrupt copy was not fetched again');
    const results = await call('classify', repaired.handle, paths);
    assert.deepEqual(results.map((r) => r.label), nodeLabels.frozen);
  });
});

if (skip) test('classifier in headless Chromium', { skip }, () => {});
