// The demo page: a <dualmem-classifier> element plus the panels around it
// (model, classes, staged rollout, memory inspector, memories, privacy).
// The library is imported only after the service worker controls the page,
// so that every file the classifier loads passes through it and is kept for
// offline use.

import { applyLanguage, LANGUAGES, preferredLanguage, translate } from './i18n.js';
import { bytesPlot, entropy, entropyPlot, slotsPlot, timelinePlot } from './plots.js';

const LANGUAGE_KEY = 'dualmem-demo-language';
const LOCAL_MODEL_CACHE = 'dualmem-demo-local-models';
const LOCAL_MODEL_PATH = new URL('local-model/', import.meta.url).pathname;
const PROMPT_CACHE = 'dualmem-prompt-embeddings-v1';
/** How long the page waits for a new service worker to take control before loading without it. */
const CONTROLLER_WAIT_MS = 3000;

/** The ten Fashion-MNIST classes of the embedded model, in its label order. */
const EMBEDDED_CLASSES = ['t-shirt', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'ankle boot'];

const $ = (selector) => document.querySelector(selector);

const state = {
  language: 'en',
  classes: EMBEDDED_CLASSES.map((name) => ({ name, prompts: [] })),
  /** One entry per classified image: { mode, entropy, agree, correct }; agree and correct may be null. */
  history: [],
  persistence: false,
  serviceWorker: false,
  defaults: null,
  message: null,
};

let element;

function t(key, params) {
  return translate(state.language, key, params);
}

function setStatus(key, params) {
  const status = $('#status');
  status.dataset.i18n = key;
  status.textContent = t(key, params);
  status.dataset.params = JSON.stringify(params ?? {});
}

function setMemoryMessage(key, params) {
  state.message = key === null ? null : [key, params];
  $('#memory-message').textContent = key === null ? '' : t(key, params);
}

// ---------------------------------------------------------------------------
// Language

function componentStrings() {
  const keys = ['pick', 'truth', 'correctTo', 'correctButton', 'corrected', 'wouldSay', 'sourceText', 'sourceStatic', 'sourceDynamic'];
  const strings = Object.fromEntries(keys.map((key) => [key, t(key)]));
  return { ...strings, dropHint: t('dropHint'), loading: t('statusLoading'), ready: '', busy: t('statusBusy') };
}

function setLanguage(language) {
  state.language = LANGUAGES.includes(language) ? language : 'en';
  $('#language').value = state.language;
  applyLanguage(document, state.language);
  const status = $('#status');
  status.textContent = t(status.dataset.i18n, JSON.parse(status.dataset.params ?? '{}'));
  if (state.message) setMemoryMessage(...state.message);
  if (element) element.strings = componentStrings();
  $('#offline-note').textContent = state.serviceWorker ? t('offlineReady') : '';
  renderClassTable();
  renderInspector();
}

// ---------------------------------------------------------------------------
// Service worker

/** Registers sw.js and waits until it controls the page; returns whether it does. */
async function startServiceWorker() {
  if (!('serviceWorker' in navigator)) return false;
  try {
    await navigator.serviceWorker.register(new URL('sw.js', import.meta.url), { scope: '/', type: 'classic' });
  } catch (error) {
    console.warn(`dualmem demo: the service worker failed to register, so the demo will not work offline: ${error.message}`);
    return false;
  }
  if (navigator.serviceWorker.controller) return true;
  await Promise.race([
    new Promise((done) => navigator.serviceWorker.addEventListener('controllerchange', done, { once: true })),
    new Promise((done) => setTimeout(done, CONTROLLER_WAIT_MS)),
  ]);
  return navigator.serviceWorker.controller !== null;
}

// ---------------------------------------------------------------------------
// Classifier element

function readSettings() {
  const form = $('#settings');
  return {
    mode: form.elements.mode.value,
    capacity: Number(form.elements.capacity.value),
    precision: form.elements.precision.value,
    retentionDays: Number(form.elements.retentionDays.value),
    byteBudget: Math.round(Number(form.elements.byteBudget.value) * 1024),
  };
}

/** Sets a numeric attribute, or removes it for 0, which the form uses for "no limit". */
function setOptionalNumber(name, value) {
  if (value > 0) element.setAttribute(name, String(value));
  else element.removeAttribute(name);
}

/**
 * Copies the settings form onto the element's attributes. The element
 * rebuilds once when any of them changed.
 *
 * @returns {boolean} whether an attribute changed
 */
function applySettings() {
  const before = element.getAttributeNames().map((name) => `${name}=${element.getAttribute(name)}`).join('\n');
  const settings = readSettings();
  element.setAttribute('mode', settings.mode);
  element.setAttribute('capacity', String(settings.capacity));
  element.setAttribute('precision', settings.precision);
  if (state.persistence) {
    element.setAttribute('store', 'indexeddb');
    // Memories of one model do not fit another, so each model gets its own namespace.
    element.setAttribute('namespace', `demo:${element.getAttribute('model') ?? 'tiny-clip'}`);
    setOptionalNumber('retention-days', settings.retentionDays);
    setOptionalNumber('max-bytes', settings.byteBudget);
  }
  const after = element.getAttributeNames().map((name) => `${name}=${element.getAttribute(name)}`).join('\n');
  if (before === after) return false;
  document.body.dataset.ready = 'false';
  setStatus('statusLoading');
  return true;
}

function describeThreads() {
  return globalThis.crossOriginIsolated ? t('threadsIsolated') : t('threadsSingle');
}

/** Returns whether the classifier can export, import and clear stored memories. */
function hasMemoryApi() {
  return typeof element?.classifier?.memory?.export === 'function';
}

/**
 * Takes the class list from the classifier, because stored memories bring
 * their classes back on load. Prompts typed in the editor are kept by name.
 */
function syncClasses() {
  const prompts = new Map(state.classes.map((spec) => [spec.name, spec.prompts]));
  state.classes = element.classifier.classes.map((name) => ({ name, prompts: prompts.get(name) ?? [] }));
}

function onReady() {
  const modelName = element.getAttribute('model') ?? 'tiny-clip';
  setStatus('statusReady', { model: modelName, mode: element.getAttribute('mode'), threads: describeThreads() });
  syncClasses();
  const memoryApi = hasMemoryApi();
  for (const id of ['#export', '#import']) $(id).disabled = !memoryApi;
  const stored = Boolean(element.classifier.stats().storage);
  if (!memoryApi) setMemoryMessage(stored ? 'exportMissing' : 'persistenceMissing');
  else if (['persistenceMissing', 'exportMissing'].includes(state.message?.[0])) setMemoryMessage(null);
  document.body.dataset.ready = 'true';
  renderClassTable();
  renderInspector();
}

/** Switches the model (null: the embedded one); the element rebuilds with the current settings. */
function setModel(url) {
  if (url === null) element.removeAttribute('model');
  else element.setAttribute('model', url);
  document.body.dataset.ready = 'false';
  setStatus('statusLoading');
  applySettings();
}

function onProgress({ detail }) {
  if (detail.stage === 'download') {
    const percent = detail.total > 0 ? `${Math.round((detail.loaded / detail.total) * 100)}%` : `${detail.loaded} B`;
    setStatus('statusDownload', { file: detail.file, percent });
  } else {
    setStatus('statusPrompts', { loaded: detail.loaded, total: detail.total });
  }
}

/**
 * Rebuilds the probabilities the result's label came from, by the default
 * fusion weights, because a result carries only the top 5 of them.
 */
function modeProbabilities(result, mode) {
  const weights = state.defaults.memory.weights;
  const heads = [['text', weights.text], ['static', weights.static]];
  if (mode === 'adaptive') heads.push(['dynamic', weights.dynamic]);
  const used = heads.filter(([key]) => result.sources[key] !== null);
  const total = used.reduce((sum, [, weight]) => sum + weight, 0);
  const names = Object.keys(result.sources.text);
  return names.map((name) => used.reduce((sum, [key, weight]) => sum + weight * result.sources[key][name], 0) / total);
}

function argMaxName(probabilities, names) {
  let best = 0;
  probabilities.forEach((p, i) => {
    if (p > probabilities[best]) best = i;
  });
  return names[best];
}

/** Returns whether the frozen and adaptive labels of a result agree, or null in frozen mode. */
function agreementOf(result, mode) {
  if (mode === 'shadow') return result.adaptive.label === result.label;
  if (mode === 'adaptive') {
    const names = Object.keys(result.sources.text);
    return argMaxName(modeProbabilities(result, 'frozen'), names) === result.label;
  }
  return null;
}

function onResult({ detail }) {
  const { result, truth } = detail;
  const mode = element.getAttribute('mode');
  state.history.push({
    mode,
    entropy: entropy(modeProbabilities(result, mode)),
    agree: agreementOf(result, mode),
    correct: truth === null ? null : truth === result.label,
  });
  scheduleRender();
}

let renderQueued = false;

/** Redraws the inspector at most once a frame, however many results arrive. */
function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    renderInspector();
    renderShots();
  });
}

// ---------------------------------------------------------------------------
// Sample images

async function classifySamples() {
  const response = await fetch(new URL('samples/samples.json', import.meta.url));
  const samples = await response.json();
  const blobs = await Promise.all(samples.map(async ({ file }) => {
    const image = await fetch(new URL(`samples/${file}`, import.meta.url));
    return new File([await image.blob()], file, { type: 'image/png' });
  }));
  await element.classify(blobs, { labels: samples.map((sample) => sample.label) });
  onReady();
}

// ---------------------------------------------------------------------------
// Class editor

function renderClassTable() {
  const body = $('#class-table tbody');
  body.replaceChildren();
  state.classes.forEach((spec, index) => {
    const row = document.createElement('tr');
    row.dataset.class = spec.name;
    row.innerHTML = '<td><input class="class-name" size="12"></td><td><textarea class="class-prompts" rows="1"></textarea></td>' +
      '<td class="shots">0</td><td class="actions"><button type="button" class="add-shots"></button>' +
      '<button type="button" class="remove-class"></button><input type="file" accept="image/*" multiple hidden></td>';
    row.querySelector('.class-name').value = spec.name;
    row.querySelector('.class-prompts').value = spec.prompts.join('\n');
    row.querySelector('.class-prompts').placeholder = `a photo of a ${spec.name}.`;
    row.querySelector('.add-shots').textContent = t('addShots');
    row.querySelector('.remove-class').textContent = t('removeClass');
    const picker = row.querySelector('input[type=file]');
    row.querySelector('.add-shots').addEventListener('click', () => picker.click());
    picker.addEventListener('change', () => addShots(spec.name, [...picker.files]).finally(() => { picker.value = ''; }));
    row.querySelector('.remove-class').addEventListener('click', () => {
      readClassTable();
      state.classes.splice(index, 1);
      renderClassTable();
    });
    body.append(row);
  });
  renderShots();
}

function renderShots() {
  const stats = element?.classifier?.stats();
  const counts = new Map((stats?.classes ?? []).map((entry) => [entry.name, entry.static]));
  for (const row of document.querySelectorAll('#class-table tbody tr')) {
    row.querySelector('.shots').textContent = String(counts.get(row.querySelector('.class-name').value) ?? 0);
  }
}

function readClassTable() {
  state.classes = [...document.querySelectorAll('#class-table tbody tr')].map((row) => ({
    name: row.querySelector('.class-name').value.trim(),
    prompts: row.querySelector('.class-prompts').value.split('\n').map((line) => line.trim()).filter(Boolean),
  })).filter((spec) => spec.name.length > 0);
}

function classSpecs() {
  return state.classes.map((spec) => (spec.prompts.length > 0 ? { name: spec.name, prompts: spec.prompts } : spec.name));
}

async function applyClasses() {
  readClassTable();
  try {
    await element.applyClasses(classSpecs());
  } catch (error) {
    setStatus('statusError', { message: error.message });
    return;
  }
  renderClassTable();
  renderInspector();
}

async function addShots(className, files) {
  if (files.length === 0) return;
  try {
    const classifier = await element.ready;
    await classifier.addExamples(className, files);
  } catch (error) {
    setStatus('statusError', { message: error.message });
  }
  renderShots();
  renderInspector();
}

// ---------------------------------------------------------------------------
// Memory inspector

function renderInspector() {
  const stats = element?.classifier?.stats();
  const classes = stats?.classes ?? state.classes.map((spec) => ({ name: spec.name, static: 0, dynamic: 0 }));
  $('#plot-slots').innerHTML = slotsPlot(classes,
    { text: t('sourceText'), static: t('sourceStatic'), dynamic: t('sourceDynamic') }, t('plotSlots'));
  $('#plot-entropy').innerHTML = entropyPlot(state.history.map((entry) => entry.entropy), classes.length, t('plotEntropy'));
  $('#plot-timeline').innerHTML = timelinePlot(state.history,
    { agreement: t('agreement'), accuracy: t('accuracy') }, t('plotAgreement'));
  const budget = state.persistence ? readSettings().byteBudget : 0;
  $('#plot-bytes').innerHTML = bytesPlot(stats?.bytes ?? 0, budget, t('noBudget'), t('plotBytes'));

  const shadow = state.history.filter((entry) => entry.mode === 'shadow');
  const report = $('#shadow-report');
  if (shadow.length === 0) {
    report.textContent = t(element?.getAttribute('mode') === 'shadow' ? 'shadowWaiting' : 'shadowNone');
  } else {
    const changed = shadow.filter((entry) => entry.agree === false).length;
    report.textContent = t('shadowReport', {
      changed, total: shadow.length, percent: `${Math.round((changed / shadow.length) * 100)}%`,
    });
  }
  report.dataset.changed = String(shadow.filter((entry) => entry.agree === false).length);
  report.dataset.total = String(shadow.length);
}

// ---------------------------------------------------------------------------
// Model source

async function loadLocalFolder(files) {
  if (!navigator.serviceWorker?.controller) {
    setStatus('statusError', { message: t('folderNeedsWorker') });
    return;
  }
  // The service worker serves requests under local-model/ from this cache,
  // so the classifier reads the folder as if it came from the server.
  const folder = `${LOCAL_MODEL_PATH}${Date.now().toString(36)}/`;
  const cache = await caches.open(LOCAL_MODEL_CACHE);
  for (const key of await cache.keys()) await cache.delete(key);
  for (const file of files) {
    const relative = file.webkitRelativePath.split('/').slice(1).map(encodeURIComponent).join('/');
    const headers = { 'Content-Type': file.name.endsWith('.json') ? 'application/json' : 'application/octet-stream', 'Content-Length': String(file.size) };
    await cache.put(new URL(folder + relative, location.href), new Response(file, { headers }));
  }
  setModel(folder);
}

// ---------------------------------------------------------------------------
// Memories

function download(blob, name) {
  const link = document.createElement('a');
  link.href = URL.createObjectURL(blob);
  link.download = name;
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}

async function exportMemories() {
  const classifier = await element.ready;
  const file = await classifier.memory.export();
  download(file, `dualmem-memories-${new Date().toISOString().slice(0, 10)}.bin`);
  setMemoryMessage('exported', { bytes: file.size });
}

async function importMemories(file) {
  const classifier = await element.ready;
  await classifier.memory.import(file);
  syncClasses();
  setMemoryMessage('imported');
  renderClassTable();
  renderInspector();
}

function deleteDatabase(name) {
  return new Promise((done, fail) => {
    const request = indexedDB.deleteDatabase(name);
    request.onsuccess = () => done();
    request.onerror = () => fail(request.error);
    request.onblocked = () => fail(new Error(`IndexedDB database ${name} is still open in another tab; close it and wipe again`));
  });
}

async function wipeMemories() {
  if (!window.confirm(t('wipeConfirm'))) return;
  const classifier = await element.ready;
  await globalThis.caches?.delete(PROMPT_CACHE);
  state.history = [];
  element.clearResults();
  if (hasMemoryApi()) {
    await classifier.memory.clear();
  } else {
    // Without classifier.memory the stored database is deleted while no classifier has it open.
    const namespace = element.getAttribute('namespace');
    await element.reload(() => (namespace === null ? Promise.resolve() : deleteDatabase(`dualmem-memory:${namespace}`)));
  }
  setMemoryMessage('wiped');
  renderShots();
  renderInspector();
}

function guard(work) {
  return (...args) => work(...args).catch((error) => setMemoryMessage('statusError', { message: error.message }));
}

// ---------------------------------------------------------------------------
// Start

function bindControls() {
  bindPageControls();
  bindMemoryControls();
}

function bindPageControls() {
  $('#language').addEventListener('change', (event) => {
    localStorage.setItem(LANGUAGE_KEY, event.target.value);
    setLanguage(event.target.value);
  });
  $('#samples').addEventListener('click', () => classifySamples().catch((error) => setStatus('statusError', { message: error.message })));
  $('#clear-results').addEventListener('click', () => element.clearResults());
  $('#settings').addEventListener('submit', (event) => {
    event.preventDefault();
    applySettings();
  });
  $('#add-class').addEventListener('click', () => {
    readClassTable();
    state.classes.push({ name: `${t('newClassName')} ${state.classes.length + 1}`, prompts: [] });
    renderClassTable();
  });
  $('#apply-classes').addEventListener('click', () => applyClasses());
  $('#model-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const url = $('#model-url').value.trim();
    if (url) setModel(url.endsWith('/') ? url : `${url}/`);
  });
  $('#load-folder').addEventListener('click', () => $('#folder-input').click());
  $('#folder-input').addEventListener('change', () => loadLocalFolder([...$('#folder-input').files]));
  $('#embedded-model').addEventListener('click', () => setModel(null));
}

function bindMemoryControls() {
  // The element handles a paste while it has focus; this takes pastes anywhere else on the page.
  document.addEventListener('paste', (event) => {
    if (event.defaultPrevented || !element) return;
    const files = [...(event.clipboardData?.items ?? [])]
      .filter((item) => item.kind === 'file' && item.type.startsWith('image/'))
      .map((item) => item.getAsFile());
    if (files.length === 0) return;
    event.preventDefault();
    element.classify(files).catch((error) => setStatus('statusError', { message: error.message }));
  });
  $('#export').addEventListener('click', guard(exportMemories));
  $('#import').addEventListener('click', () => $('#import-input').click());
  $('#import-input').addEventListener('change', guard(async () => {
    const [file] = $('#import-input').files;
    $('#import-input').value = '';
    if (file) await importMemories(file);
  }));
  $('#wipe').addEventListener('click', guard(wipeMemories));
}

async function start() {
  setLanguage(localStorage.getItem(LANGUAGE_KEY) ?? preferredLanguage());
  bindControls();
  state.serviceWorker = await startServiceWorker();
  $('#offline-note').textContent = state.serviceWorker ? t('offlineReady') : '';

  const library = await import('../src/index.js');
  await import('../src/component.js');
  state.defaults = library.DEFAULTS;
  state.persistence = 'store' in library.DEFAULTS;
  for (const id of ['#export', '#import']) $(id).disabled = true;

  element = $('#classifier');
  element.strings = componentStrings();
  element.options = { onWarning: (message) => console.info(`dualmem: ${message}`) };
  element.addEventListener('dualmem-ready', onReady);
  element.addEventListener('dualmem-progress', onProgress);
  element.addEventListener('dualmem-result', onResult);
  element.addEventListener('dualmem-correction', scheduleRender);
  element.addEventListener('dualmem-memoryupdate', scheduleRender);
  element.addEventListener('dualmem-warning', ({ detail }) => setMemoryMessage('warning', { message: detail.message }));
  element.addEventListener('dualmem-error', ({ detail }) => setStatus('statusError', { message: detail.error.message }));
  element.setAttribute('classes', JSON.stringify(classSpecs()));
  applySettings();
  window.addEventListener('offline', () => setStatus('statusOffline'));
  window.dualmemDemo = { state, element, classifySamples, wipeMemories };
}

start().catch((error) => setStatus('statusError', { message: error.message }));
