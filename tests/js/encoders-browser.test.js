// The CLIP encoders on ONNX Runtime Web in headless Chromium: the embedded
// model, served over HTTP, classifies sample images as under Node, and a
// server that responds with HTML, or a page that is not cross-origin
// isolated, gives a clear error or warning.

import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';

import { averageUnitEmbeddings } from '../../web/src/class-embeddings.js';
import { decodeImage } from '../../web/src/decode-node.js';
import { ClipEncoders } from '../../web/src/encoders.js';
import { SIMPLE_TEMPLATES, fillTemplates } from '../../web/src/templates.js';
import { browserSkipReason, launchBrowser } from './helpers/browser.js';
import { MODEL_DIR, modelSkipReason, sampleClasses, sampleImages } from './helpers/samples.js';
import { startStaticServer } from './helpers/static-server.js';
import { cosine } from './helpers/vectors.js';

const REPO_ROOT = new URL('../../', import.meta.url);
const skip = browserSkipReason() ?? modelSkipReason();
const MODEL_URL = '/models/tiny-clip/';
const PAGE = 'tests/js/pages/encoders.html';

// What a single-page-app server sends for every unknown path.
const INDEX_PAGE = '<!DOCTYPE html>\n<html><head><title>App</title></head><body>app</body></html>\n';

function argMax(values) {
  return values.reduce((best, value, i) => (value > values[best] ? i : best), 0);
}

describe('ClipEncoders in headless Chromium', { skip: skip ?? false }, () => {
  const classes = skip ? [] : sampleClasses();
  const images = skip ? [] : sampleImages(2);
  const prompts = classes.map((name) => fillTemplates(SIMPLE_TEMPLATES, name));
  let server;
  let browser;
  let nodeImageEmbeddings;

  /** Opens the test page at `query` and returns a function that calls into it. */
  async function openPage(query = '') {
    const page = await browser.context.newPage();
    await page.goto(`${server.url}${PAGE}${query}`);
    await page.waitForFunction(() => window.dualmemTestReady === true);
    const call = (name, ...args) => page.evaluate(([fn, rest]) => window.dualmemTest[fn](...rest), [name, args]);
    return { page, call };
  }

  async function expectLoadError(model, options, code, messagePattern) {
    const { page, call } = await openPage();
    try {
      const outcome = await call('load', model, options);
      assert.ok(outcome.error, `expected ${code}, the model loaded: ${JSON.stringify(outcome)}`);
      assert.equal(outcome.error.name, 'DualmemError', outcome.error.message);
      assert.equal(outcome.error.code, code, outcome.error.message);
      assert.match(outcome.error.message, messagePattern);
      return outcome.error;
    } finally {
      await page.close();
    }
  }

  before(async () => {
    const encoders = await ClipEncoders.load(fileURLToPath(MODEL_DIR));
    try {
      const pixelValues = [];
      for (const image of images) pixelValues.push(encoders.preprocess(await decodeImage(image.path)));
      nodeImageEmbeddings = await encoders.embedPixelValues(pixelValues);
    } finally {
      await encoders.dispose();
    }

    server = await startStaticServer(REPO_ROOT);
    browser = await launchBrowser();
    // A server that responds to every path under /spa/ with its index page,
    // once labelled as HTML and once as bytes.
    await browser.context.route('**/spa/**', (route) => route.fulfill({
      status: 200, contentType: 'text/html; charset=utf-8', body: INDEX_PAGE,
    }));
    await browser.context.route('**/spa-bytes/**', (route) => route.fulfill({
      status: 200, contentType: 'application/octet-stream', body: INDEX_PAGE,
    }));
    await browser.context.route('**/bert-model/config.json', (route) => route.fulfill({
      status: 200, contentType: 'application/json', body: JSON.stringify({ model_type: 'bert' }),
    }));
    // The page served without the headers that make it cross-origin isolated.
    await browser.context.route(/encoders\.html\?plain$/, async (route) => {
      const response = await route.fetch();
      const headers = { ...response.headers() };
      delete headers['cross-origin-opener-policy'];
      delete headers['cross-origin-embedder-policy'];
      await route.fulfill({ response, headers });
    });
  });

  after(async () => {
    await browser?.close();
    await server?.close();
  });

  test('embedded model classifies samples as under Node', async (t) => {
    const { page, call } = await openPage();
    try {
      const loaded = await call('load', MODEL_URL);
      assert.equal(loaded.error, undefined, JSON.stringify(loaded.error));
      assert.equal(loaded.isolated, true);
      assert.deepEqual(loaded.warnings, []);

      const promptEmbeddings = await call('embedTexts', prompts.flat());
      assert.equal(promptEmbeddings.error, undefined, JSON.stringify(promptEmbeddings.error));
      const classEmbeddings = prompts.map((list, c) => averageUnitEmbeddings(
        promptEmbeddings.slice(c * list.length, (c + 1) * list.length)));
      const imageEmbeddings = await call('embedImages', images.map((image) => `/${image.relative}`));
      assert.equal(imageEmbeddings.error, undefined, JSON.stringify(imageEmbeddings.error));

      const labels = imageEmbeddings.map((embedding) => classes[argMax(
        classEmbeddings.map((classEmbedding) => cosine(classEmbedding, embedding)))]);
      const correct = labels.filter((label, i) => label === images[i].className).length;
      const cosines = imageEmbeddings.map((embedding, i) => cosine(embedding, nodeImageEmbeddings[i]));
      t.diagnostic(`browser int8, ${loaded.threads} thread(s): ${correct}/${images.length} correct; ` +
        `image cosine to Node min ${Math.min(...cosines).toFixed(6)}`);
      assert.ok(correct >= 0.8 * images.length, `${correct}/${images.length} correct, expected >= 80%`);
      // Same graph, same ONNX Runtime WebAssembly kernels and equal decoded
      // pixels; only the thread split of sums may differ.
      for (const [i, value] of cosines.entries()) {
        assert.ok(value >= 0.9999, `${images[i].relative}: cosine to Node ${value}, expected >= 0.9999`);
      }
    } finally {
      await page.close();
    }
  });

  test('index page for the model URL is model_not_found', async () => {
    await expectLoadError('/spa/tiny-clip/', {}, 'model_not_found', /was served as an HTML page/);
  });

  test('index page sent as bytes is model_not_found', async () => {
    await expectLoadError('/spa-bytes/tiny-clip/', {}, 'model_not_found', /is an HTML page/);
  });

  test('missing model folder is model_not_found', async () => {
    await expectLoadError('/no-such-model/', {}, 'model_not_found', /config\.json returned HTTP 404/);
  });

  test('config.json of a BERT is model_not_clip', async () => {
    await expectLoadError('/bert-model/', {}, 'model_not_clip', /model_type "bert", expected "clip"/);
  });

  test('ortWasmPaths serving HTML is wasm_unavailable', async () => {
    await expectLoadError(MODEL_URL, { ortWasmPaths: '/spa/ort/' }, 'wasm_unavailable',
      /ort-wasm-simd-threaded\.wasm is an HTML page/);
  });

  test('per-file ortWasmPaths serving HTML is wasm_unavailable', async () => {
    // An object names files directly and skips the early check, so the
    // failure comes from ONNX Runtime compiling the page.
    await expectLoadError(MODEL_URL, { ortWasmPaths: { wasm: '/spa-bytes/ort/ort-wasm-simd-threaded.wasm' } },
      'wasm_unavailable', /could not be started.*The \.wasm location served an HTML page/);
  });

  test('ortWasmPaths with a missing file is wasm_unavailable', async () => {
    await expectLoadError(MODEL_URL, { ortWasmPaths: '/no-such-folder/' }, 'wasm_unavailable',
      /returned HTTP 404/);
  });

  test('page without isolation warns and runs one thread', async () => {
    const { page, call } = await openPage('?plain');
    try {
      const loaded = await call('load', MODEL_URL);
      assert.equal(loaded.error, undefined, JSON.stringify(loaded.error));
      assert.equal(loaded.isolated, false);
      assert.equal(loaded.threads, 1);
      assert.equal(loaded.warnings.length, 1, JSON.stringify(loaded.warnings));
      assert.match(loaded.warnings[0], /not cross-origin isolated, so ONNX Runtime runs on one thread/);
      const embeddings = await call('embedImages', [`/${images[0].relative}`]);
      assert.equal(embeddings.error, undefined, JSON.stringify(embeddings.error));
      assert.ok(cosine(embeddings[0], nodeImageEmbeddings[0]) >= 0.99);
    } finally {
      await page.close();
    }
  });
});
