// Image decoding in headless Chromium. The browser decoder gives the same
// pixels as the Node decoder (sharp) on every odd fixture and reads exact
// unpremultiplied RGB through WebGL. The conformance images, run through the
// WebAssembly Preprocessor in the page, meet the tolerance. The loss of the
// 2D-canvas fallback on translucent pixels is measured and reported.

import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';

import sharp from 'sharp';

import { decodeImage } from '../../web/src/decode-node.js';
import { browserSkipReason, launchBrowser } from './helpers/browser.js';
import {
  CLIP_PREPROCESSOR_CONFIG, GOLDEN_IMAGES, compareInPixelUnits, formatDeviation, readGolden,
} from './helpers/clip-preprocess.js';
import { startStaticServer } from './helpers/static-server.js';

const REPO_ROOT = new URL('../../', import.meta.url);
const IMAGES = new URL('../fixtures/images/', import.meta.url);
const ODD_IMAGES = readdirSync(IMAGES).filter((name) => !name.endsWith('.py')).sort();
const skip = browserSkipReason();

function fromBase64Floats(text) {
  const bytes = Buffer.from(text, 'base64');
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

/** Returns max and 99th percentile of |a - b| over two byte arrays. */
function byteDeviation(a, b) {
  const deviations = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i += 1) deviations[i] = Math.abs(a[i] - b[i]);
  const sorted = deviations.slice().sort();
  const differing = deviations.reduce((count, d) => count + (d > 0 ? 1 : 0), 0);
  return { max: sorted[sorted.length - 1], p99: sorted[Math.floor(0.99 * (sorted.length - 1))], differing };
}

async function nodeDecodeOrError(path) {
  try {
    return await decodeImage(path);
  } catch (error) {
    return { error: { code: error.code, message: error.message } };
  }
}

describe('decodeImage in headless Chromium', { skip: skip ?? false }, () => {
  let server;
  let browser;
  let page;

  before(async () => {
    server = await startStaticServer(REPO_ROOT);
    browser = await launchBrowser();
    page = await browser.context.newPage();
    await page.goto(`${server.url}tests/js/pages/decode.html`);
    await page.waitForFunction(() => window.dualmemTestReady === true);
  });

  after(async () => {
    await browser?.close();
    await server?.close();
  });

  const call = (name, ...args) => page.evaluate(([fn, rest]) => window.dualmemTest[fn](...rest), [name, args]);

  test('WebGL readback passes its exactness self-test', async () => {
    assert.equal(await call('webglIsExact'), true,
      'WebGL is missing or premultiplies; decoding would fall back to the lossy 2D canvas');
  });

  for (const name of ODD_IMAGES) {
    test(`${name} decodes as under Node`, async (t) => {
      const expected = await nodeDecodeOrError(fileURLToPath(new URL(name, IMAGES)));
      const actual = await call('decode', `/tests/fixtures/images/${name}`);
      if (expected.error) {
        assert.ok(actual.error, `browser decoded ${name}, Node raised ${expected.error.code}`);
        assert.equal(actual.error.code, expected.error.code, actual.error.message);
        t.diagnostic(`${name}: ${actual.error.code}: ${actual.error.message}`);
        return;
      }
      assert.equal(actual.error, undefined, JSON.stringify(actual.error));
      // A JPEG has no alpha, so the exact 2D-canvas path reads it.
      assert.equal(actual.readback, name.endsWith('.jpg') ? 'canvas' : 'webgl');
      assert.deepEqual([actual.width, actual.height, actual.channels],
        [expected.width, expected.height, expected.channels]);
      const deviation = byteDeviation(Buffer.from(actual.pixels, 'base64'), expected.pixels);
      t.diagnostic(`${name}: max ${deviation.max}/255, p99 ${deviation.p99}/255 against sharp`);
      // Equal bytes, JPEG included, were measured with Chromium 156 and sharp
      // 0.34.5 (mozjpeg, a libjpeg-turbo fork with the same integer IDCT).
      assert.equal(deviation.max, 0, `${deviation.differing} bytes differ, max ${deviation.max}`);
    });
  }

  for (const fixture of ['preprocess/alpha_gradient_300x200.png', 'images/rgba_40x24.png']) {
    test(`2D-canvas fallback keeps opaque pixels of ${fixture}`, async (t) => {
      const path = fileURLToPath(new URL(`../fixtures/${fixture}`, import.meta.url));
      const expected = await decodeImage(path);
      const alpha = await sharp(path).extractChannel(3).raw().toBuffer();
      const actual = await call('decode', `/tests/fixtures/${fixture}`, 'canvas');
      const pixels = Buffer.from(actual.pixels, 'base64');

      // Deviations from sharp's exact RGB, grouped by the alpha of the pixel.
      const groups = { 'alpha 255': [], '0 < alpha < 255': [], 'alpha 0': [] };
      for (let i = 0; i < alpha.length; i += 1) {
        let group = '0 < alpha < 255';
        if (alpha[i] === 255) group = 'alpha 255';
        if (alpha[i] === 0) group = 'alpha 0';
        for (let c = 0; c < 3; c += 1) {
          groups[group].push(Math.abs(pixels[i * 3 + c] - expected.pixels[i * 3 + c]));
        }
      }
      for (const [group, values] of Object.entries(groups)) {
        if (values.length === 0) continue;
        const sorted = values.sort((a, b) => a - b);
        t.diagnostic(`${fixture}, canvas readback, ${group}: max ${sorted.at(-1)}/255, ` +
          `p99 ${sorted[Math.floor(0.99 * (sorted.length - 1))]}/255 over ${sorted.length} values`);
      }
      assert.ok(groups['alpha 255'].every((d) => d === 0), 'opaque pixels changed on the canvas path');
    });
  }

  test('allowRgba keeps the RGB bytes and gray', async () => {
    for (const name of ODD_IMAGES) {
      const rgb = await call('decode', `/tests/fixtures/images/${name}`);
      if (rgb.error) continue;
      const rgba = await call('decode', `/tests/fixtures/images/${name}`, 'auto', true);
      assert.equal(rgba.error, undefined, `${name}: ${JSON.stringify(rgba.error)}`);
      const expectedChannels = rgb.channels === 1 ? 1 : 4;
      assert.deepEqual([rgba.width, rgba.height, rgba.channels], [rgb.width, rgb.height, expectedChannels], name);
      const rgbBytes = Buffer.from(rgb.pixels, 'base64');
      const rgbaBytes = Buffer.from(rgba.pixels, 'base64');
      if (expectedChannels === 1) {
        assert.ok(rgbBytes.equals(rgbaBytes), `${name}: gray bytes differ`);
        continue;
      }
      const dropped = Buffer.alloc(rgbBytes.length);
      for (let i = 0, o = 0; o < dropped.length; i += 4, o += 3) rgbaBytes.copy(dropped, o, i, i + 3);
      assert.ok(dropped.equals(rgbBytes), `${name}: RGB of the RGBA pixels differs from the RGB decode`);
    }
  });

  test('kept canvas clears under transparent pixels', async () => {
    const translucent = '/tests/fixtures/images/rgba_40x24.png';
    const first = await call('decode', translucent, 'canvas');
    // A larger opaque image fills the kept canvas between the two reads.
    await call('decode', '/tests/fixtures/preprocess/alpha_gradient_300x200.png', 'canvas');
    await call('decode', '/tests/fixtures/images/orientation_6.jpg', 'canvas');
    const second = await call('decode', translucent, 'canvas');
    assert.equal(second.error, undefined, JSON.stringify(second.error));
    assert.equal(second.pixels, first.pixels);
  });

  test('image larger than one WebGL tile is read exactly', async () => {
    const result = await call('tiledRoundTrip', 4100, 5);
    assert.deepEqual(result, { width: 4100, height: 5, channels: 3, differing: 0 });
  });

  for (const kind of ['bitmap', 'img', 'canvas', 'imagedata']) {
    test(`${kind} input matches the Blob input`, async () => {
      const path = '/tests/fixtures/images/orientation_6.jpg';
      const fromBlob = await call('decode', path);
      const actual = await call('decodeAs', path, kind);
      assert.equal(actual.error, undefined, JSON.stringify(actual.error));
      assert.deepEqual([actual.width, actual.height, actual.channels], [48, 32, 3]);
      assert.equal(actual.pixels, fromBlob.pixels);
    });
  }

  for (const name of GOLDEN_IMAGES) {
    test(`${name} through the page Preprocessor meets the tolerance`, async (t) => {
      const path = `/tests/fixtures/preprocess/${name}`;
      const golden = readGolden(name);
      const webgl = await call('preprocess', path, CLIP_PREPROCESSOR_CONFIG, 'webgl');
      assert.equal(webgl.error, undefined, JSON.stringify(webgl.error));
      const stats = compareInPixelUnits(fromBase64Floats(webgl.tensor), golden);
      t.diagnostic(`${name}, WebGL readback: ${formatDeviation(stats)}`);

      const canvas = await call('preprocess', path, CLIP_PREPROCESSOR_CONFIG, 'canvas');
      assert.equal(canvas.error, undefined, JSON.stringify(canvas.error));
      const canvasStats = compareInPixelUnits(fromBase64Floats(canvas.tensor), golden);
      t.diagnostic(`${name}, 2D-canvas readback: ${formatDeviation(canvasStats)}`);

      assert.ok(stats.within1 >= 0.99, `${formatDeviation(stats)}; expected 99% within 1/255`);
      assert.equal(stats.beyond3, 0, `${formatDeviation(stats)}; expected none beyond 3/255`);
    });
  }
});

if (skip) test('browser decoding tests', { skip }, () => {});

test('static server rejects paths outside its root', async () => {
  const { request } = await import('node:http');
  const server = await startStaticServer(new URL('../fixtures/', import.meta.url));
  const get = (path) => new Promise((done, fail) => {
    const { port } = new URL(server.url);
    request({ host: '127.0.0.1', port, path }, (response) => {
      response.resume();
      done({ status: response.statusCode, headers: response.headers });
    }).on('error', fail).end();
  });
  try {
    const served = await get('/images/rgba_40x24.png');
    assert.equal(served.status, 200);
    assert.equal(served.headers['content-type'], 'image/png');
    assert.equal(served.headers['cross-origin-embedder-policy'], 'require-corp');
    assert.equal(served.headers['cross-origin-opener-policy'], 'same-origin');
    assert.equal((await get('/..%2F..%2Fpackage.json')).status, 403);
    assert.equal((await get('/images/..%2F..%2F..%2Fpackage.json')).status, 403);
    // A plain '..' segment is resolved by URL parsing and stays inside the root.
    assert.equal((await get('/../../package.json')).status, 404);
  } finally {
    await server.close();
  }
});
