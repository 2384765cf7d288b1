// <dualmem-classifier> in headless Chromium, loaded by a plain
// <script type="module"> (tests/js/pages/component.html): attributes build
// the classifier, the file picker classifies, results show scores by source,
// corrections and errors arrive as events, and CSS parts and custom
// properties style the shadow tree.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { browserSkipReason, launchBrowser } from './helpers/browser.js';
import { modelSkipReason, sampleImages } from './helpers/samples.js';
import { startStaticServer } from './helpers/static-server.js';

const REPO_ROOT = new URL('../../', import.meta.url);
const skip = browserSkipReason() ?? modelSkipReason();
const LOAD_TIMEOUT_MS = 60000;

describe('dualmem-classifier element', { skip: skip ?? false }, () => {
  const images = skip ? [] : sampleImages(1, 16);
  let server;
  let browser;
  let page;

  const events = (type) => page.evaluate((name) => window.events.filter((event) => event.type === name), type);

  /** Waits until `count` events of `type` have arrived in total. */
  async function waitForEvents(type, count) {
    await page.waitForFunction(([name, wanted]) => window.events.filter((event) => event.type === name).length >= wanted,
      [type, count], { timeout: LOAD_TIMEOUT_MS });
    return events(type);
  }

  before(async () => {
    server = await startStaticServer(REPO_ROOT);
    browser = await launchBrowser();
    page = await browser.context.newPage();
    await page.goto(`${server.url}tests/js/pages/component.html`);
  });

  after(async () => {
    await browser?.close();
    await server?.close();
  });

  test('attributes build a classifier in a worker', async () => {
    const [ready] = await waitForEvents('dualmem-ready', 1);
    assert.equal(ready.detail.classes.length, 10, JSON.stringify(ready.detail.classes));
    assert.equal(ready.detail.stats.mode, 'shadow');
    const options = await page.evaluate(() => document.querySelector('dualmem-classifier').classifierOptions());
    assert.equal(options.worker, true);
    assert.equal(options.templates, 'simple');
    assert.deepEqual(await events('dualmem-error'), []);
  });

  test('file picker classifies several images', async () => {
    await page.locator('dualmem-classifier input[type=file]').setInputFiles(images.map((image) => image.path));
    const results = await waitForEvents('dualmem-result', images.length);
    assert.equal(results.length, images.length);
    let right = 0;
    results.forEach(({ detail }, i) => {
      assert.equal(typeof detail.result.label, 'string');
      assert.ok(detail.result.sources.text, 'a result carries the text head');
      assert.ok(detail.result.sources.dynamic, 'shadow mode reports the dynamic head');
      if (detail.result.label === images[i].className) right += 1;
    });
    console.log(`component: ${right} of ${images.length} sample images labelled right`);
    assert.ok(right >= images.length - 3, `expected at most 3 errors in ${images.length}, got ${images.length - right}`);
    assert.equal(await page.locator('dualmem-classifier [part~=result]').count(), images.length);
  });

  test('result cards show each source', async () => {
    const card = page.locator('dualmem-classifier [part~=result]').first();
    const text = await card.locator('[part=sources]').innerText();
    for (const word of ['text', 'static', 'dynamic']) assert.match(text, new RegExp(word), text);
    assert.equal(await card.locator('[part~=bar-static]').count(), 1);
  });

  test('correction from a card becomes a shot', async () => {
    const card = page.locator('dualmem-classifier [part~=result]').first();
    const shown = await card.locator('[part=label]').innerText();
    const target = shown.startsWith('bag') ? 'coat' : 'bag';
    await card.locator('select').selectOption(target);
    await card.locator('[part~=correct-button]').click();
    const [correction] = await waitForEvents('dualmem-correction', 1);
    assert.equal(correction.detail.label, target);
    assert.equal(correction.detail.shots, 1);
    assert.match(await card.locator('[part=correct]').innerText(), new RegExp(`Corrected to ${target}`));
    const updates = await events('dualmem-memoryupdate');
    assert.ok(updates.some((event) => event.detail.reason === 'correct'), JSON.stringify(updates));
  });

  test('CSS custom properties and parts style the shadow tree', async () => {
    const styles = await page.evaluate(() => {
      const root = document.querySelector('dualmem-classifier').shadowRoot;
      return {
        bar: getComputedStyle(root.querySelector('[part~=bar-static]')).backgroundColor,
        label: getComputedStyle(root.querySelector('[part=label]')).color,
      };
    });
    assert.equal(styles.bar, 'rgb(1, 2, 3)');
    assert.equal(styles.label, 'rgb(4, 5, 6)');
  });

  test('strings property translates shown results', async () => {
    await page.evaluate(() => {
      document.querySelector('dualmem-classifier').strings = { correctButton: '修正', truth: '正解:{label}', pick: 'ファイルを選択' };
    });
    const card = page.locator('dualmem-classifier [part~=result]').last();
    assert.equal(await card.locator('[part~=correct-button]').innerText(), '修正');
    assert.equal(await page.locator('dualmem-classifier [part~=pick]').innerText(), 'ファイルを選択');
  });

  test('applyClasses adds a class without a rebuild', async () => {
    const readyBefore = (await events('dualmem-ready')).length;
    const classes = await page.evaluate(async () => {
      const element = document.querySelector('dualmem-classifier');
      const specs = JSON.parse(JSON.stringify(element.getAttribute('classes').split(',').map((name) => name.trim())));
      await element.applyClasses([...specs, { name: 'scarf', prompts: ['a photo of a scarf.'] }]);
      return { names: element.classifier.classes, stats: element.classifier.stats() };
    });
    assert.equal(classes.names.at(-1), 'scarf');
    assert.equal(classes.stats.corrected, 1, 'the correction made before survives');
    assert.equal((await events('dualmem-ready')).length, readyBefore, 'no rebuild happened');
  });

  test('mode attribute rebuilds the classifier', async () => {
    await page.evaluate(() => document.querySelector('dualmem-classifier').setAttribute('mode', 'frozen'));
    const ready = await waitForEvents('dualmem-ready', 2);
    assert.equal(ready.at(-1).detail.stats.mode, 'frozen');
    await page.locator('dualmem-classifier input[type=file]').setInputFiles([images[0].path]);
    const results = await waitForEvents('dualmem-result', images.length + 1);
    assert.equal(results.at(-1).detail.result.sources.dynamic, null);
  });

  test('invalid attribute raises dualmem-error', async () => {
    await page.evaluate(() => document.querySelector('dualmem-classifier').setAttribute('mode', 'sideways'));
    const [error] = await waitForEvents('dualmem-error', 1);
    assert.equal(error.detail.code, 'bad_option', error.detail.message);
    assert.match(error.detail.message, /sideways/);
  });
});
