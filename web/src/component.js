// <dualmem-classifier>: a custom element for dashboards. It owns a classifier
// built from its attributes and takes images from a drop zone, a file picker
// or the clipboard. Each result shows its score, the score of each memory
// (text, static, dynamic) and a control to correct it.
//
//   <script type="module" src="/web/src/component.js"></script>
//   <dualmem-classifier classes="sneaker, sandal, bag" mode="shadow"></dualmem-classifier>
//
// Events (all bubble and cross the shadow root): dualmem-ready,
// dualmem-progress, dualmem-result, dualmem-correction, dualmem-memoryupdate,
// dualmem-warning and dualmem-error.

import { createClassifier } from './index.js';

/** Attributes that rebuild the classifier when they change. */
const CLASSIFIER_ATTRIBUTES = ['model', 'classes', 'templates', 'mode', 'capacity', 'precision', 'views',
  'worker', 'threads', 'store', 'namespace', 'retention-days', 'max-bytes'];

const DEFAULT_MAX_RESULTS = 100;

/** Texts shown by the element; set the `strings` property to translate them. */
export const DEFAULT_STRINGS = Object.freeze({
  dropHint: 'Drop images here, paste them or',
  pick: 'choose files',
  loading: 'Loading the model…',
  ready: 'Ready',
  busy: 'Classifying {done} of {total}…',
  truth: 'true: {label}',
  correctTo: 'Correct to',
  correctButton: 'Correct',
  corrected: 'Corrected to {label}',
  wouldSay: 'Adaptive would say {label}',
  sourceText: 'text',
  sourceStatic: 'static',
  sourceDynamic: 'dynamic',
});

const STYLE = `
:host { display: block; font: var(--dualmem-font, inherit); color: var(--dualmem-text, inherit); }
[part=dropzone] { border: 2px dashed var(--dualmem-border, #8a94a6); border-radius: var(--dualmem-radius, 8px);
  padding: 1.2em; text-align: center; background: var(--dualmem-background, transparent); }
[part=dropzone].over { border-color: var(--dualmem-accent, #2563eb); background: var(--dualmem-drop-background, #2563eb14); }
button, select { font: inherit; }
[part~=button] { color: var(--dualmem-accent, #2563eb); background: none; border: 1px solid currentColor;
  border-radius: var(--dualmem-radius, 8px); padding: 0.2em 0.7em; cursor: pointer; }
[part=status] { min-height: 1.4em; margin: 0.4em 0; opacity: 0.8; }
[part=results] { display: grid; grid-template-columns: repeat(auto-fill, minmax(15em, 1fr)); gap: 0.6em; }
[part~=result] { display: grid; grid-template-columns: 56px 1fr; gap: 0.3em 0.6em; padding: 0.5em;
  border: 1px solid var(--dualmem-border, #8a94a6); border-radius: var(--dualmem-radius, 8px); }
[part~=result].wrong { border-color: var(--dualmem-wrong, #dc2626); }
[part=thumb] { width: 56px; height: 56px; object-fit: contain; image-rendering: pixelated; grid-row: span 2; background: #000; }
[part=label] { font-weight: 600; }
[part=truth] { font-size: 0.85em; }
.ok [part=truth] { color: var(--dualmem-right, #16a34a); }
.wrong [part=truth] { color: var(--dualmem-wrong, #dc2626); }
[part=sources] { grid-column: span 2; display: grid; grid-template-columns: 4.5em 1fr 2.8em; gap: 2px 4px;
  font-size: 0.8em; align-items: center; }
.track { height: 0.6em; background: var(--dualmem-track, #8a94a633); border-radius: 3px; overflow: hidden; }
.fill { height: 100%; }
[part~=bar-text] { background: var(--dualmem-text-color, #64748b); }
[part~=bar-static] { background: var(--dualmem-static-color, #16a34a); }
[part~=bar-dynamic] { background: var(--dualmem-dynamic-color, #9333ea); }
[part=shadow] { grid-column: span 2; font-size: 0.8em; color: var(--dualmem-dynamic-color, #9333ea); }
[part=correct] { grid-column: span 2; display: flex; gap: 0.3em; font-size: 0.85em; align-items: center; }
[part=correct] select { flex: 1; min-width: 0; }
`;

function fill(template, params) {
  return template.replace(/\{(\w+)\}/g, (match, name) => (name in params ? String(params[name]) : match));
}

/**
 * Parses the `classes` attribute: a JSON array of names or { name, prompts },
 * or names separated by commas.
 */
export function parseClassesAttribute(text) {
  const trimmed = (text ?? '').trim();
  if (trimmed.startsWith('[')) return JSON.parse(trimmed);
  return trimmed.split(',').map((name) => name.trim()).filter((name) => name.length > 0);
}

function numberAttribute(element, name) {
  const text = element.getAttribute(name);
  return text === null || text.trim() === '' ? undefined : Number(text);
}

function createElement(tag, properties = {}, children = []) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(properties)) {
    if (key === 'part') element.setAttribute('part', value);
    else element[key] = value;
  }
  element.append(...children);
  return element;
}

/** The `<dualmem-classifier>` element. */
export class DualmemClassifierElement extends HTMLElement {
  static observedAttributes = CLASSIFIER_ATTRIBUTES;

  #classifier = null;
  #loading = null;
  #rebuildQueued = false;
  #strings = { ...DEFAULT_STRINGS };
  #options = {};
  #resultsElement;
  #statusElement;
  #fileInput;
  #thumbnails = [];
  #appliedClasses = null;

  constructor() {
    super();
    const root = this.attachShadow({ mode: 'open' });
    root.innerHTML = `<style>${STYLE}</style>`;
    this.#fileInput = createElement('input', { type: 'file', accept: 'image/*', multiple: true, hidden: true });
    this.#fileInput.addEventListener('change', () => {
      const files = [...this.#fileInput.files];
      this.#fileInput.value = '';
      this.classify(files).catch(() => {});
    });
    const pick = createElement('button', { type: 'button', part: 'button pick' });
    pick.addEventListener('click', () => this.#fileInput.click());
    const hint = createElement('span', { className: 'hint' });
    const dropzone = createElement('div', { part: 'dropzone', tabIndex: 0 }, [hint, ' ', pick, this.#fileInput]);
    this.#listenForDrops(dropzone);
    this.#statusElement = createElement('div', { part: 'status', role: 'status' });
    this.#resultsElement = createElement('div', { part: 'results' });
    root.append(dropzone, this.#statusElement, createElement('slot'), this.#resultsElement);
    this.addEventListener('paste', (event) => this.#onPaste(event));
    this.#renderStrings();
  }

  connectedCallback() {
    this.#queueRebuild();
  }

  disconnectedCallback() {
    // Moving the element within the page fires disconnect then connect; dispose only when it stays out.
    queueMicrotask(() => {
      if (!this.isConnected) this.#disposeClassifier();
    });
  }

  attributeChangedCallback(name, oldValue, newValue) {
    // applyClasses has already changed the classifier to match this value.
    if (name === 'classes' && newValue === this.#appliedClasses) return;
    if (oldValue !== newValue && this.isConnected) this.#queueRebuild();
  }

  /** The classifier in use, or null while it loads or after a failed load. */
  get classifier() {
    return this.#classifier;
  }

  /** Resolves to the classifier once the current load finishes; rejects with its error. */
  get ready() {
    return this.#loading ?? Promise.reject(new Error('the element is not in a document'));
  }

  /** Extra createClassifier options that attributes cannot express, such as `onWarning`. */
  get options() {
    return this.#options;
  }

  set options(value) {
    this.#options = { ...value };
    if (this.isConnected) this.#queueRebuild();
  }

  /** The element's texts; unset keys keep the English default. */
  get strings() {
    return { ...this.#strings };
  }

  set strings(value) {
    this.#strings = { ...DEFAULT_STRINGS, ...value };
    this.#renderStrings();
  }

  /** createClassifier options built from the attributes and `options`. */
  classifierOptions() {
    const memory = {};
    const capacity = numberAttribute(this, 'capacity');
    if (capacity !== undefined) memory.capacityPerClass = capacity;
    if (this.hasAttribute('precision')) memory.precision = this.getAttribute('precision');
    const options = {
      classes: parseClassesAttribute(this.getAttribute('classes')),
      worker: this.getAttribute('worker') !== 'false',
      ...this.#options,
      memory: { ...memory, ...this.#options.memory },
    };
    for (const name of ['model', 'templates', 'mode', 'store', 'namespace']) {
      if (this.hasAttribute(name)) options[name] = this.getAttribute(name);
    }
    const views = numberAttribute(this, 'views');
    if (views !== undefined) options.views = views;
    const threads = this.getAttribute('threads');
    if (threads !== null) options.threads = threads === 'auto' ? 'auto' : Number(threads);
    const retentionDays = numberAttribute(this, 'retention-days');
    if (retentionDays !== undefined) options.memory.maxAgeDays = retentionDays;
    const maxBytes = numberAttribute(this, 'max-bytes');
    if (maxBytes !== undefined) options.memory.maxBytes = maxBytes;
    return options;
  }

  /**
   * Classifies images one after another and shows each result.
   *
   * @param {Array<Blob|File>|FileList} inputs
   * @param {{labels?: (string|null)[]}} [options] known true labels, shown
   *   beside the prediction and sent with the dualmem-result event
   * @returns {Promise<object[]>} the classify results, in input order
   */
  async classify(inputs, { labels = [] } = {}) {
    const list = [...inputs];
    const classifier = await this.ready;
    const results = [];
    for (let i = 0; i < list.length; i += 1) {
      this.#status(fill(this.#strings.busy, { done: i + 1, total: list.length }));
      let result;
      try {
        result = await classifier.classify(list[i]);
      } catch (error) {
        this.#emit('dualmem-error', { error, input: list[i] });
        continue;
      }
      const truth = labels[i] ?? null;
      this.#showResult(result, list[i], truth);
      results.push(result);
      this.#emit('dualmem-result', { result, input: list[i], truth });
    }
    this.#status(this.#strings.ready);
    return results;
  }

  /**
   * Corrects a shown result: the image becomes a shot of `label`.
   *
   * @returns {Promise<{id:number, label:string, shots:number}>}
   */
  async correct(id, label) {
    const classifier = await this.ready;
    const outcome = await classifier.correct(id, label);
    const card = this.#resultsElement.querySelector(`[data-id="${Number(id)}"]`);
    if (card) this.#markCorrected(card, label);
    this.#emit('dualmem-correction', outcome);
    return outcome;
  }

  /**
   * Changes the class list in place: removes the classes that are gone or
   * whose prompts changed, then adds the new ones. Unlike setting the
   * `classes` attribute, which rebuilds the classifier, this keeps the
   * memories of the classes that stay.
   *
   * @param {Array<string|{name:string, prompts?:string[]}>} specs
   * @throws {DualmemError} `bad_option` or `duplicate_class` from addClass;
   *   classes removed before the failure stay removed
   */
  async applyClasses(specs) {
    const classifier = await this.ready;
    const before = parseClassesAttribute(this.getAttribute('classes'));
    const key = (spec) => JSON.stringify(typeof spec === 'string' ? { name: spec } : { name: spec.name, prompts: spec.prompts });
    const name = (spec) => (typeof spec === 'string' ? spec : spec.name);
    const kept = new Set(specs.map(key));
    for (const spec of before) {
      if (!kept.has(key(spec)) && classifier.classes.includes(name(spec))) await classifier.removeClass(name(spec));
    }
    for (const spec of specs) {
      if (!classifier.classes.includes(name(spec))) await classifier.addClass(spec);
    }
    this.#appliedClasses = JSON.stringify(specs);
    this.setAttribute('classes', this.#appliedClasses);
  }

  /** Removes the shown results and frees their thumbnails. */
  clearResults() {
    for (const url of this.#thumbnails) URL.revokeObjectURL(url);
    this.#thumbnails = [];
    this.#resultsElement.replaceChildren();
  }

  /**
   * Rebuilds the classifier now, for example after its stored memories changed.
   *
   * @param {() => Promise<void>} [between] runs after the old classifier is
   *   disposed and before the new one loads, for example to delete its storage
   * @returns {Promise<object>} the new classifier
   */
  reload(between) {
    return this.#rebuild(between);
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true }));
  }

  #status(text) {
    this.#statusElement.textContent = text;
  }

  #renderStrings() {
    const root = this.shadowRoot;
    root.querySelector('.hint').textContent = this.#strings.dropHint;
    root.querySelector('[part~=pick]').textContent = this.#strings.pick;

    // Shown results switch language too.
    for (const element of root.querySelectorAll('[part~=result] [data-string]')) {
      element.textContent = this.#strings[element.dataset.string];
    }
    for (const element of root.querySelectorAll('[part=truth][data-truth]')) {
      element.textContent = fill(this.#strings.truth, { label: element.dataset.truth });
    }
  }

  #listenForDrops(dropzone) {
    dropzone.addEventListener('dragover', (event) => {
      event.preventDefault();
      dropzone.classList.add('over');
    });
    dropzone.addEventListener('dragleave', () => dropzone.classList.remove('over'));
    dropzone.addEventListener('drop', (event) => {
      event.preventDefault();
      dropzone.classList.remove('over');
      const files = [...(event.dataTransfer?.files ?? [])].filter((file) => file.type.startsWith('image/'));
      if (files.length > 0) this.classify(files).catch(() => {});
    });
  }

  #onPaste(event) {
    const files = [...(event.clipboardData?.items ?? [])]
      .filter((item) => item.kind === 'file' && item.type.startsWith('image/'))
      .map((item) => item.getAsFile());
    if (files.length === 0) return;
    event.preventDefault();
    this.classify(files).catch(() => {});
  }

  /** Rebuilds once per task however many attributes changed in it. */
  #queueRebuild() {
    if (this.#rebuildQueued) return;
    this.#rebuildQueued = true;
    queueMicrotask(() => {
      this.#rebuildQueued = false;
      // Without classes there is nothing to classify, so the element waits for the attribute.
      if (this.isConnected && this.hasAttribute('classes')) this.#rebuild().catch(() => {});
    });
  }

  #rebuild(between) {
    const previous = this.#loading;
    this.#loading = (async () => {
      await previous?.catch(() => {});
      await this.#disposeClassifier();
      await between?.();
      this.#status(this.#strings.loading);
      const options = this.classifierOptions();
      const userWarning = options.onWarning;
      const userProgress = options.onProgress;
      options.onWarning = (message) => {
        userWarning?.(message);
        this.#emit('dualmem-warning', { message });
      };
      options.onProgress = (detail) => {
        userProgress?.(detail);
        this.#emit('dualmem-progress', detail);
      };
      try {
        const classifier = await createClassifier(options);
        classifier.addEventListener('memoryupdate', (event) => this.#emit('dualmem-memoryupdate', event.detail));
        classifier.addEventListener('storagewarning', (event) => this.#emit('dualmem-warning', event.detail));
        this.#classifier = classifier;
        this.#status(this.#strings.ready);
        this.#emit('dualmem-ready', { classes: classifier.classes, stats: classifier.stats() });
        return classifier;
      } catch (error) {
        this.#status(error.message);
        this.#emit('dualmem-error', { error });
        throw error;
      }
    })();
    this.#loading.catch(() => {});
    return this.#loading;
  }

  async #disposeClassifier() {
    const classifier = this.#classifier;
    this.#classifier = null;
    await classifier?.dispose();
  }

  #sourceRows(result) {
    const rows = [];
    for (const [key, text] of [['text', 'sourceText'], ['static', 'sourceStatic'], ['dynamic', 'sourceDynamic']]) {
      const scores = result.sources[key];
      const value = scores ? scores[result.label] : null;
      const fillElement = createElement('div', { className: 'fill', part: `bar bar-${key}` });
      fillElement.style.width = `${Math.round((value ?? 0) * 100)}%`;
      const name = createElement('span', {}, [this.#strings[text]]);
      name.dataset.string = text;
      rows.push(name,
        createElement('div', { className: 'track' }, [fillElement]),
        createElement('span', {}, [value === null ? '–' : value.toFixed(2)]));
    }
    return rows;
  }

  #showResult(result, input, truth) {
    const card = createElement('div', { part: 'result' });
    card.dataset.id = String(result.id);
    if (truth !== null) card.classList.add(truth === result.label ? 'ok' : 'wrong');

    const thumb = createElement('img', { part: 'thumb', alt: '' });
    if (input instanceof Blob) {
      thumb.src = URL.createObjectURL(input);
      this.#thumbnails.push(thumb.src);
    }
    const label = createElement('div', { part: 'label' }, [`${result.label} ${result.score.toFixed(2)}`]);
    const detail = createElement('div', { part: 'truth' },
      [truth === null ? '' : fill(this.#strings.truth, { label: truth })]);
    if (truth !== null) detail.dataset.truth = truth;
    card.append(thumb, label, detail, createElement('div', { part: 'sources' }, this.#sourceRows(result)));
    if (result.adaptive && result.adaptive.label !== result.label) {
      card.append(createElement('div', { part: 'shadow' }, [fill(this.#strings.wouldSay, { label: result.adaptive.label })]));
    }
    card.append(this.#correctionControl(result));

    this.#resultsElement.prepend(card);
    const maxResults = numberAttribute(this, 'max-results') ?? DEFAULT_MAX_RESULTS;
    while (this.#resultsElement.children.length > maxResults) this.#removeCard(this.#resultsElement.lastElementChild);
  }

  #correctionControl(result) {
    const select = createElement('select', { ariaLabel: this.#strings.correctTo });
    for (const name of this.#classifier?.classes ?? []) {
      select.append(createElement('option', { value: name, selected: name === result.label }, [name]));
    }
    const button = createElement('button', { type: 'button', part: 'button correct-button' }, [this.#strings.correctButton]);
    button.dataset.string = 'correctButton';
    const caption = createElement('span', {}, [this.#strings.correctTo]);
    caption.dataset.string = 'correctTo';
    button.addEventListener('click', () => {
      this.correct(result.id, select.value).catch((error) => this.#emit('dualmem-error', { error }));
    });
    return createElement('div', { part: 'correct' }, [caption, select, button]);
  }

  #markCorrected(card, label) {
    const control = card.querySelector('[part=correct]');
    control.replaceChildren(fill(this.#strings.corrected, { label }));
  }

  #removeCard(card) {
    const image = card.querySelector('img');
    if (image?.src.startsWith('blob:')) {
      URL.revokeObjectURL(image.src);
      this.#thumbnails = this.#thumbnails.filter((url) => url !== image.src);
    }
    card.remove();
  }
}

if (typeof customElements !== 'undefined' && !customElements.get('dualmem-classifier')) {
  customElements.define('dualmem-classifier', DualmemClassifierElement);
}
