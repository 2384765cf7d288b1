// The classifier behind createClassifier: CLIP encoders, the dual memories
// and the class list, run in the calling thread. Calls are queued, so they
// run one at a time in the order they were made, and memory updates follow
// that order.

import { ClassEmbedder, PROMPT_CACHE_NAME } from './class-embeddings.js';
import { DualMemory } from './core.js';
import { decodeInput } from './decode-input.js';
import { ClipEncoders } from './encoders.js';
import { DualmemError } from './errors.js';
import { MemoryApi, MemoryPersistence } from './memory-api.js';
import { createModelFetch, openModelCache } from './model-cache.js';
import { resolveModelSource } from './model-files.js';
import { normalizeClassSpec } from './options.js';
import { fillTemplates } from './templates.js';
import { normalizeTrainOptions } from './train-options.js';
import { viewSeed } from './views.js';

/** Entries of `top` in a result, fewer when there are fewer classes. */
export const TOP_COUNT = 5;

const now = () => globalThis.performance?.now() ?? Date.now();

/** Returns the index of the largest value; the first one on ties. */
function argMax(values) {
  let best = 0;
  for (let i = 1; i < values.length; i += 1) if (values[i] > values[best]) best = i;
  return best;
}

/**
 * Fuses the text and static heads as the core fuses all three, leaving the
 * dynamic head out: (w_text · text + w_static · static) / (w_text + w_static),
 * with the static head dropped while no class has shots.
 */
export function fuseFrozen(step, weights) {
  if (step.static === null) return Float32Array.from(step.text);
  const total = weights.text + weights.static;
  return step.text.map((p, i) => (weights.text * p + weights.static * step.static[i]) / total);
}

function byClass(names, probabilities) {
  if (probabilities === null) return null;
  return Object.fromEntries(names.map((name, i) => [name, probabilities[i]]));
}

function topEntries(names, probabilities) {
  return names.map((label, i) => ({ label, score: probabilities[i] }))
    .sort((a, b) => b.score - a.score)
    .slice(0, TOP_COUNT);
}

/** Zero-shot classifier with dual memories; see createClassifier for the options. */
export class Classifier extends EventTarget {
  #options;
  #internals;
  #encoders = null;
  #memory = null;
  #persistence = null;
  #embedder = null;
  #classes = [];
  #results = new Map();
  #nextId = 1;
  #counts = { classified: 0, compared: 0, agreed: 0, corrected: 0 };
  #queue = Promise.resolve();
  #disposed = false;

  /**
   * Loads the model and encodes the classes.
   *
   * @param {object} options output of normalizeOptions
   * @param {object} [internals] for the worker: `ortModuleUrl` (where a
   *   worker of an unbundled page imports ONNX Runtime Web from) and
   *   `onEvent(type, detail)`, called for every event, those of loading included
   * @returns {Promise<Classifier>}
   * @throws {DualmemError} `storage_unavailable`, `model_not_found`,
   *   `model_not_clip`, `wasm_unavailable`, the errors of the text encoder,
   *   and those of a stored memory that does not load:
   *   `memory_model_mismatch`, `memory_corrupt`, `memory_key_required`,
   *   `memory_key_invalid`, `storage_blocked`
   */
  static async create(options, internals = {}) {
    const classifier = new Classifier(options, internals);
    try {
      await classifier.#load();
    } catch (error) {
      await classifier.#release();
      throw error;
    }
    return classifier;
  }

  constructor(options, internals) {
    super();
    this.#options = options;
    this.#internals = internals;
  }

  #emit(type, detail) {
    this.#internals.onEvent?.(type, detail);
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  #warn(message) {
    if (this.#options.onWarning) this.#options.onWarning(message);
    else console.warn(`dualmem: ${message}`);
  }

  #storageWarning(message, error) {
    this.#emit('storagewarning', { message, error });
    this.#warn(message);
  }

  #progress(detail) {
    this.#options.onProgress?.(detail);
    this.#emit('progress', detail);
  }

  async #load() {
    const options = this.#options;
    const base = resolveModelSource(options.model);
    const remote = base instanceof URL && base.protocol !== 'file:';
    const storageWarning = (message, error) => this.#storageWarning(message, error);
    const downloadProgress = (detail) => this.#progress({ stage: 'download', ...detail });

    // Cache Storage first: with cache: true a missing store fails before any download.
    const store = remote || options.cache === true
      ? await openModelCache(options.cache, { onStorageWarning: storageWarning }) : null;
    // The stored memory is read while the model loads. It is checked against
    // the model's fingerprint and loaded afterwards, so errors and warnings
    // come in the order they would without the overlap.
    this.#persistence = this.#beginPersistence();
    this.#encoders = await ClipEncoders.load(base, {
      quantized: options.quantized,
      threads: options.threads,
      ortWasmPaths: options.ortWasmPaths instanceof URL ? options.ortWasmPaths.href : options.ortWasmPaths,
      ortModuleUrl: this.#internals.ortModuleUrl,
      core: { wasmUrl: options.wasmUrl },
      fetch: createModelFetch({ store, base: remote ? base : undefined, onProgress: downloadProgress, onStorageWarning: storageWarning }),
      onProgress: remote ? undefined : downloadProgress,
      onWarning: (message) => this.#warn(message),
    });

    const { memory } = options;
    this.#memory = new DualMemory(this.#encoders.core, this.#encoders.dim, {
      logitScale: memory.logitScale, beta: memory.beta, capacity: memory.capacityPerClass,
      selectionRatio: memory.selectionRatio, weights: memory.weights, precision: memory.precision,
    });
    const promptStore = store ? await globalThis.caches.open(PROMPT_CACHE_NAME).catch(() => null) : null;
    this.#embedder = new ClassEmbedder(this.#encoders, {
      store: promptStore,
      onProgress: (detail) => this.#progress(detail),
      onStorageWarning: storageWarning,
    });
    await this.#openPersistence();
  }

  /** Starts opening the memory store and reading the stored memory; see MemoryPersistence.begin. */
  #beginPersistence() {
    const options = this.#options;
    let store = options.store;
    if (store === 'auto') store = globalThis.indexedDB ? 'indexeddb' : 'memory';
    return MemoryPersistence.begin({ ...options, store, ...(this.#internals.storage ?? {}) }, this.#persistenceHooks());
  }

  /**
   * Loads the stored memory, whose classes come first, then adds the
   * classes of the options that it lacks.
   */
  async #openPersistence() {
    const options = this.#options;
    const persistence = this.#persistence;
    const loaded = await persistence.finish(this.#encoders.modelFingerprint);

    const missing = options.classes.filter((spec) => !this.#classes.some((entry) => entry.name === spec.name));
    if (missing.length > 0) this.#appendClasses(missing, ...await this.#embedClasses(missing));
    if (loaded && missing.length > 0) await persistence.save();
  }

  #persistenceHooks() {
    return {
      save: () => this.#memory.saveSnapshot(this.#encoders.modelFingerprint, { classNames: this.classes }),
      load: (bytes) => {
        const { classNames } = this.#memory.loadSnapshot(bytes, { expectedFingerprint: this.#encoders.modelFingerprint });
        // Fusion weights follow the options; the other settings stay as stored.
        this.#memory.setWeights(this.#options.memory.weights);
        const prompts = new Map(this.#classes.map((entry) => [entry.name, entry.prompts]));
        this.#classes = classNames.map((name) => ({ name, prompts: prompts.get(name) ?? null }));
      },
      reset: () => {
        this.#memory.resetDynamic();
        for (let i = 0; i < this.#classes.length; i += 1) this.#memory.clearShots(i);
      },
      memory: () => this.#memory,
      enqueue: (operation) => {
        if (!this.#disposed) this.#enqueue(operation).catch(() => {});
      },
      warn: (message, error) => this.#storageWarning(message, error),
      emit: (type, detail) => this.#emit(type, detail),
    };
  }

  async #embedClasses(specs) {
    const prompts = specs.map((spec) => spec.prompts ?? fillTemplates(this.#options.templates, spec.name));
    return [prompts, await this.#embedder.embedClasses(prompts)];
  }

  #appendClasses(specs, prompts, embeddings) {
    specs.forEach((spec, i) => {
      this.#memory.addClass(embeddings[i]);
      this.#classes.push({ name: spec.name, prompts: prompts[i] });
    });
  }

  /**
   * Runs a synchronous memory update and stores its result; see
   * MemoryPersistence.update.
   */
  #updateMemory(mutate) {
    return this.#persistence.update(mutate);
  }

  /** Runs `operation` after every earlier call has finished. */
  #enqueue(operation) {
    if (this.#disposed) {
      return Promise.reject(new DualmemError('disposed', 'the classifier was disposed; create a new one'));
    }
    const run = this.#queue.then(operation);
    this.#queue = run.catch(() => {});
    return run;
  }

  #classIndex(name) {
    const index = this.#classes.findIndex((entry) => entry.name === name);
    if (index < 0) {
      throw new DualmemError('unknown_class',
        `class ${JSON.stringify(name)} is not one of ${JSON.stringify(this.#classes.map((c) => c.name))}; ` +
        'add it with addClass first', { className: name });
    }
    return index;
  }

  /** Decodes an image and encodes its views; returns numViews × dim floats. */
  async #embedImage(input) {
    const start = now();
    // RGBA from the browser decoder goes to the core as it is; the core
    // drops the fourth byte, as the copy to RGB would.
    const image = await decodeInput(input, { allowRgba: true });
    const decoded = now();
    // The core crops and resamples the views from the decoded pixels (see
    // src/augment.h); view 0 is the plain preprocessing.
    const numViews = this.#options.views;
    const tensors = numViews === 1 ? this.#encoders.preprocess(image)
      : this.#encoders.preprocessor.runViews(image.pixels, image.width, image.height, image.channels,
        numViews, viewSeed(image, this.#options.seed));
    const size = tensors.length / numViews;
    const pixelValues = Array.from({ length: numViews }, (_, v) => tensors.subarray(v * size, (v + 1) * size));
    const preprocessed = now();
    const embeddings = await this.#encoders.embedPixelValues(pixelValues);
    const dim = this.#encoders.dim;
    const flat = new Float32Array(embeddings.length * dim);
    embeddings.forEach((embedding, i) => flat.set(embedding, i * dim));
    const timings = { decode: decoded - start, preprocess: preprocessed - decoded, encode: now() - preprocessed };
    return { views: flat, numViews, timings };
  }

  /**
   * Classifies one image.
   *
   * @param {Blob|File|ImageBitmap|ImageData|HTMLImageElement|URL|string|ArrayBuffer|Uint8Array} input
   *   a string is a URL in browsers and a file path (or http(s) URL) in Node
   * @returns {Promise<object>} `{ id, label, score, top, sources, timings,
   *   durable }` and, in shadow mode, `adaptive: { label, score }`; durable
   *   is true when the memory after this call is stored (see Storage in the
   *   README)
   * @throws {DualmemError} `image_not_decodable`, `image_too_large`,
   *   `not_found`, `invalid_argument`, `disposed`
   */
  classify(input) {
    return this.#enqueue(async () => {
      if (this.#classes.length === 0) {
        throw new DualmemError('invalid_argument', 'the classifier has no classes; add one with addClass');
      }
      const start = now();
      const { views, numViews, timings } = await this.#embedImage(input);
      const mode = this.#options.mode;
      const { value: result, durable } = await this.#updateMemory(() => {
        // Timed from here, so the lock and the stored-state check before
        // the update are not counted as the memory's time.
        const stepStart = now();
        const step = this.#memory.step(views, numViews, { update: mode !== 'frozen' });
        timings.memory = now() - stepStart;
        timings.total = now() - start;
        return { value: this.#recordResult(step, views, numViews, timings), changed: step.inserted };
      });
      result.durable = durable;
      return result;
    });
  }

  #recordResult(step, views, numViews, timings) {
    const mode = this.#options.mode;
    const names = this.#classes.map((entry) => entry.name);
    const frozen = fuseFrozen(step, this.#options.memory.weights);
    const frozenLabel = argMax(frozen);
    const probabilities = mode === 'adaptive' ? step.fused : frozen;
    const labelIndex = mode === 'adaptive' ? step.label : frozenLabel;

    this.#counts.classified += 1;
    if (mode !== 'frozen') {
      this.#counts.compared += 1;
      if (step.label === frozenLabel) this.#counts.agreed += 1;
    }
    const id = this.#nextId++;
    this.#remember(id, { views, numViews, label: names[labelIndex], corrected: null });

    const result = {
      id,
      label: names[labelIndex],
      score: probabilities[labelIndex],
      top: topEntries(names, probabilities),
      sources: {
        text: byClass(names, step.text),
        static: byClass(names, step.static),
        dynamic: mode === 'frozen' ? null : byClass(names, step.dynamic),
      },
      timings,
    };
    if (mode === 'shadow') result.adaptive = { label: names[step.label], score: step.fused[step.label] };
    if (step.inserted) this.#emit('memoryupdate', { reason: 'classify', memory: 'dynamic', className: names[step.pseudoLabel] });
    return result;
  }

  #remember(id, entry) {
    if (this.#options.keepResults === 0) return;
    this.#results.set(id, entry);
    if (this.#results.size > this.#options.keepResults) this.#results.delete(this.#results.keys().next().value);
  }

  /**
   * Adds labelled images to the static memory of a class. Every image is
   * decoded before any is added, so a bad image adds none.
   *
   * @param {string} className an existing class
   * @param {Array|*} inputs one image input or a list of them
   * @returns {Promise<{className:string, added:number, shots:number}>}
   * @throws {DualmemError} `unknown_class`, `invalid_argument` for an empty
   *   list, and the errors of classify's decoding
   */
  addExamples(className, inputs) {
    return this.#enqueue(async () => {
      const list = Array.isArray(inputs) ? inputs : [inputs];
      this.#classIndex(className);
      if (list.length === 0) throw new DualmemError('invalid_argument', 'addExamples got an empty list of images');
      const embedded = [];
      for (const input of list) embedded.push(await this.#embedImage(input));
      const { value: shots, durable } = await this.#updateMemory(() => {
        // Under the lock the classes may have been reloaded, so look the index up again.
        const index = this.#classIndex(className);
        for (const { views, numViews } of embedded) this.#memory.addShot(index, views, numViews);
        return { value: this.#memory.shotCount(index), changed: true };
      });
      this.#emit('memoryupdate', { reason: 'examples', memory: 'static', className });
      return { className, added: list.length, shots, durable };
    });
  }

  /**
   * Turns a classified image into a labelled shot of `label`, for example
   * after a user corrected the prediction. The last `keepResults` results can
   * be corrected, each once.
   *
   * @param {number} id the `id` of a classify result
   * @param {string} label an existing class
   * @returns {Promise<{id:number, label:string, shots:number}>}
   * @throws {DualmemError} `unknown_result` for an id that is not kept (or
   *   was already corrected), `unknown_class`
   */
  correct(id, label) {
    return this.#enqueue(async () => {
      const entry = this.#results.get(id);
      if (entry === undefined || entry.corrected !== null) {
        const reason = entry ? `was already corrected to ${JSON.stringify(entry.corrected)}`
          : `is not among the last ${this.#options.keepResults} results (keepResults)`;
        throw new DualmemError('unknown_result', `result id ${JSON.stringify(id)} ${reason}`, { id });
      }
      this.#classIndex(label);
      const { value: shots, durable } = await this.#updateMemory(() => {
        const index = this.#classIndex(label);
        this.#memory.addCorrection(index, entry.views, entry.numViews);
        return { value: this.#memory.shotCount(index), changed: true };
      });
      entry.corrected = label;
      this.#counts.corrected += 1;
      this.#emit('memoryupdate', { reason: 'correct', memory: 'static', className: label });
      return { id, label, shots, durable };
    });
  }

  /**
   * Trains the few-shot adapter (DMN with learned projections, src/adapter.h)
   * on the examples and corrections of every class. Later classifications
   * use it until a class, an example or a correction changes; stored
   * memories do not keep it, so train again after a reload. It runs in the
   * calling thread, or in the worker with `worker: true`; 10 classes × 16
   * examples train in about a second.
   *
   * @param {object} [options] `epochs` (default 10), `learningRate` (3e-4),
   *   `weightDecay`, `labelSmoothing`, `batchSize`, `seed`, `perClassRateScale`;
   *   TRAIN_DEFAULTS in core.js lists every default
   * @returns {Promise<number[]>} the mean training loss of each epoch
   * @throws {DualmemError} `bad_option` for an unknown or invalid option,
   *   `no_examples` when no class has examples, `invalid_argument` when the
   *   loss stops being finite (learning rate too high), `disposed`
   */
  train(options = {}) {
    let checked;
    try {
      checked = normalizeTrainOptions(options);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#enqueue(async () => {
      const examples = this.#classes.reduce((sum, _, i) => sum + this.#memory.shotCount(i), 0);
      if (examples === 0) {
        throw new DualmemError('no_examples', 'train needs labelled examples; add them with addExamples or correct');
      }
      return this.#memory.train(checked);
    });
  }

  /**
   * Adds a class, encoding its prompts (the templates filled with the name,
   * or the given prompts).
   *
   * @param {string|{name:string, prompts?:string[]}} spec
   * @returns {Promise<void>}
   * @throws {DualmemError} `bad_option` for a bad spec, `duplicate_class`
   */
  addClass(spec) {
    return this.#enqueue(async () => {
      const normalized = normalizeClassSpec(spec, 'class');
      if (this.#classes.some((entry) => entry.name === normalized.name)) {
        throw new DualmemError('duplicate_class', `class ${JSON.stringify(normalized.name)} already exists`,
          { className: normalized.name });
      }
      const [prompts, embeddings] = await this.#embedClasses([normalized]);
      await this.#updateMemory(() => {
        // Another tab may have added the class meanwhile.
        const known = this.#classes.some((entry) => entry.name === normalized.name);
        if (!known) this.#appendClasses([normalized], prompts, embeddings);
        return { value: undefined, changed: !known };
      });
      this.#emit('memoryupdate', { reason: 'addClass', memory: 'classes', className: normalized.name });
    });
  }

  /**
   * Removes a class with its static and dynamic memory.
   *
   * @param {string} name
   * @returns {Promise<void>}
   * @throws {DualmemError} `unknown_class`
   */
  removeClass(name) {
    return this.#enqueue(async () => {
      this.#classIndex(name);
      await this.#updateMemory(() => {
        const index = this.#classes.findIndex((entry) => entry.name === name);
        if (index >= 0) {
          this.#memory.removeClass(index);
          this.#classes.splice(index, 1);
        }
        return { value: undefined, changed: index >= 0 };
      });
      this.#emit('memoryupdate', { reason: 'removeClass', memory: 'classes', className: name });
    });
  }

  /**
   * Reports the state of the memories and the predictions so far.
   *
   * @returns {{mode:string, precision:string, views:number, bytes:number,
   *   classes:{name:string, static:number, dynamic:number}[], classified:number,
   *   corrected:number, agreement:number|null}} `static` counts shot images,
   *   `dynamic` counts slots; `agreement` is the share of classified images
   *   whose adaptive and frozen labels agree, null in frozen mode or before
   *   the first image
   */
  stats() {
    const memory = this.#memory;
    const { classified, compared, agreed, corrected } = this.#counts;
    return {
      mode: this.#options.mode,
      precision: this.#options.memory.precision,
      views: this.#options.views,
      bytes: memory ? memory.memoryBytes : 0,
      classes: this.#classes.map((entry, i) => ({
        name: entry.name,
        static: memory ? memory.shotCount(i) : 0,
        dynamic: memory ? memory.dynamicCount(i) : 0,
      })),
      classified,
      corrected,
      agreement: compared === 0 ? null : agreed / compared,
      storage: this.#persistence ? this.#persistence.info() : null,
    };
  }

  /**
   * Export, import and clearing of the stored memories: `export({ encrypt })`,
   * `import(file, { passphrase | key })` and `clear()`, each queued after
   * the calls made before it; see MemoryApi.
   */
  get memory() {
    return new MemoryApi((operation) => this.#enqueue(() => operation(this.#persistence)));
  }

  /** Names of the classes, in order. */
  get classes() {
    return this.#classes.map((entry) => entry.name);
  }

  /**
   * Frees the model and the memories once the calls already made have
   * finished; later calls fail with `disposed`.
   *
   * @returns {Promise<void>}
   */
  dispose() {
    if (this.#disposed) return this.#queue;
    this.#disposed = true;
    this.#queue = this.#queue.then(() => this.#release());
    return this.#queue;
  }

  async #release() {
    this.#results.clear();
    this.#persistence?.close();
    this.#persistence = null;
    this.#memory?.dispose();
    this.#memory = null;
    const encoders = this.#encoders;
    this.#encoders = null;
    await encoders?.dispose();
  }
}
