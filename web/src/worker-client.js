// The page side of `worker: true`: the same methods as Classifier, each sent
// to worker.js as a message. Inputs are transferred where the platform
// allows, replies arrive in call order, and errors come back as
// DualmemError with the worker's code.

import { DualmemError } from './errors.js';
import { notDecodable } from './image-input.js';

const isNode =
  typeof process !== 'undefined' && typeof process.versions?.node === 'string' &&
  typeof window === 'undefined' && typeof WorkerGlobalScope === 'undefined';

// Variables, so that bundlers neither pack a Node module for browsers nor emit
// worker.js twice.
const NODE_WORKER_THREADS = 'node:worker_threads';
const WORKER_FILE = './worker.js';

const BITMAP_OPTIONS = Object.freeze({
  imageOrientation: 'from-image', premultiplyAlpha: 'none', colorSpaceConversion: 'none',
});

/** Starts worker.js and adapts its messages to one interface. */
async function startWorker() {
  if (isNode) {
    const { Worker } = await import(/* @vite-ignore */ NODE_WORKER_THREADS);
    const worker = new Worker(new URL(WORKER_FILE, import.meta.url));
    return {
      post: (message, transfer) => worker.postMessage(message, transfer),
      listen: (onMessage, onError) => {
        worker.on('message', onMessage);
        worker.on('error', onError);
      },
      terminate: () => worker.terminate(),
    };
  }
  const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
  return {
    post: (message, transfer) => worker.postMessage(message, transfer),
    listen: (onMessage, onError) => {
      worker.addEventListener('message', (event) => onMessage(event.data));
      worker.addEventListener('error', (event) => onError(event.error ?? new Error(event.message ?? 'worker error')));
    },
    terminate: () => worker.terminate(),
  };
}

/**
 * Returns the URL that the page's import map gives `onnxruntime-web/wasm`, because
 * a worker does not see import maps. Returns undefined under a bundler, whose
 * worker bundle contains ONNX Runtime, and in Node.
 */
function ortModuleUrl() {
  if (isNode || typeof import.meta.resolve !== 'function') return undefined;
  try {
    return import.meta.resolve('onnxruntime-web/wasm');
  } catch {
    return undefined;
  }
}

/** Makes a location absolute against the page, because the worker's base URL differs. */
function absolute(location) {
  if (location === undefined) return undefined;
  if (location instanceof URL) return location.href;
  if (isNode) return location;
  return new URL(location, globalThis.location.href).href;
}

/** Copies the options into a form that postMessage accepts. */
function cloneableOptions(options) {
  let ortWasmPaths = options.ortWasmPaths;
  if (ortWasmPaths !== undefined && typeof ortWasmPaths === 'object' && !(ortWasmPaths instanceof URL)) {
    ortWasmPaths = Object.fromEntries(Object.entries(ortWasmPaths).map(([key, value]) => [key, absolute(value)]));
  } else {
    ortWasmPaths = absolute(ortWasmPaths);
  }
  const { onProgress, onWarning, ...rest } = options;
  return {
    ...rest,
    templates: [...options.templates],
    model: absolute(options.model),
    wasmUrl: absolute(options.wasmUrl),
    ortWasmPaths,
  };
}

/**
 * Prepares an image input for postMessage. Transferable objects are
 * transferred and image elements become ImageBitmaps. Typed arrays are
 * copied, because their buffer may contain other data. URLs become absolute.
 *
 * @returns {Promise<{value:*, transfer:Transferable[]}>}
 */
async function prepareInput(input) {
  if (typeof input === 'string' || input instanceof URL) return { value: absolute(input), transfer: [] };
  if (input instanceof ArrayBuffer) return { value: input, transfer: [input] };
  if (ArrayBuffer.isView(input)) {
    const copy = new Uint8Array(input.buffer, input.byteOffset, input.byteLength).slice();
    return { value: copy, transfer: [copy.buffer] };
  }
  if (typeof ImageBitmap !== 'undefined' && input instanceof ImageBitmap) return { value: input, transfer: [input] };
  if (typeof ImageData !== 'undefined' && input instanceof ImageData) {
    const { buffer } = input.data;
    return { value: { dualmemImageData: { buffer, width: input.width, height: input.height } }, transfer: [buffer] };
  }
  const isImage = typeof HTMLImageElement !== 'undefined' && input instanceof HTMLImageElement;
  const isCanvas = (typeof HTMLCanvasElement !== 'undefined' && input instanceof HTMLCanvasElement) ||
    (typeof OffscreenCanvas !== 'undefined' && input instanceof OffscreenCanvas);
  if (isImage) {
    try {
      await input.decode();
    } catch (error) {
      throw notDecodable(`the image element could not be decoded (src ${input.currentSrc || input.src}): ` +
        `${error?.message ?? error}`, error);
    }
  }
  if (isImage || isCanvas) {
    const bitmap = await createImageBitmap(input, BITMAP_OPTIONS);
    return { value: bitmap, transfer: [bitmap] };
  }
  return { value: input, transfer: [] };
}

/** A Classifier living in a worker; see createClassifier for the options. */
export class WorkerClassifier extends EventTarget {
  #port;
  #pending = new Map();
  #nextCall = 1;
  #startup = null;
  #lastCall = Promise.resolve();
  #stats = null;
  #classes = [];
  #disposed = false;
  #onProgress;
  #onWarning;

  /**
   * Starts the worker and loads the model there.
   *
   * @param {object} options output of normalizeOptions
   * @returns {Promise<WorkerClassifier>}
   * @throws {DualmemError} the errors of Classifier.create, or
   *   `worker_unavailable` when the worker script fails to start
   */
  static async create(options) {
    const client = new WorkerClassifier(options);
    try {
      await client.#start(options);
    } catch (error) {
      client.#terminate();
      throw error;
    }
    return client;
  }

  constructor(options) {
    super();
    this.#onProgress = options.onProgress;
    this.#onWarning = options.onWarning ?? ((message) => console.warn(`dualmem: ${message}`));
  }

  async #start(options) {
    this.#port = await startWorker();
    const started = new Promise((resolve, reject) => {
      this.#startup = { resolve, reject };
    });
    this.#port.listen((message) => this.#receive(message), (error) => this.#fail(error));
    await started;
    this.#classes = await this.#call('create', [cloneableOptions(options), { ortModuleUrl: ortModuleUrl() }]);
  }

  #receive(message) {
    if (message.event !== undefined) {
      if (message.event === 'ready') this.#startup.resolve();
      else if (message.event === 'warning') this.#onWarning(message.detail.message);
      else {
        if (message.event === 'progress') this.#onProgress?.(message.detail);
        this.dispatchEvent(new CustomEvent(message.event, { detail: message.detail }));
      }
      return;
    }
    const pending = this.#pending.get(message.call);
    if (pending === undefined) return;
    this.#pending.delete(message.call);
    if (message.stats) this.#stats = message.stats;
    if (message.ok) pending.resolve(message.value);
    else {
      const { code, message: text, ...fields } = message.error;
      pending.reject(new DualmemError(code, text, fields));
    }
  }

  #fail(error) {
    const failure = new DualmemError('worker_unavailable',
      `the dualmem worker stopped: ${error?.message ?? error}. With a bundler, check that it ` +
      'emitted worker.js; without one, check the browser console for the failed import', { cause: error });
    this.#startup?.reject(failure);
    for (const pending of this.#pending.values()) pending.reject(failure);
    this.#pending.clear();
    this.#terminate();
  }

  #call(method, args, transfer = []) {
    if (this.#disposed) {
      return Promise.reject(new DualmemError('disposed', 'the classifier was disposed; create a new one'));
    }
    const call = this.#nextCall++;
    const reply = new Promise((resolve, reject) => {
      this.#pending.set(call, { resolve, reject });
      try {
        this.#port.post({ call, method, args }, transfer);
      } catch (error) {
        this.#pending.delete(call);
        reject(new DualmemError('invalid_argument',
          `${method} got an input that cannot be sent to a worker (${error?.message ?? error})`, { cause: error }));
      }
    });
    this.#lastCall = Promise.allSettled([this.#lastCall, reply]);
    return reply;
  }

  /** Same as Classifier.classify; ImageBitmap, ImageData and ArrayBuffer inputs are transferred. */
  async classify(input) {
    const { value, transfer } = await prepareInput(input);
    return this.#call('classify', [value], transfer);
  }

  /** Same as Classifier.addExamples. */
  async addExamples(className, inputs) {
    const list = Array.isArray(inputs) ? inputs : [inputs];
    const prepared = await Promise.all(list.map(prepareInput));
    return this.#call('addExamples', [className, prepared.map((p) => p.value)], prepared.flatMap((p) => p.transfer));
  }

  /** Same as Classifier.correct. */
  correct(id, label) {
    return this.#call('correct', [id, label]);
  }

  /** Same as Classifier.train; the training runs in the worker. */
  train(options = {}) {
    return this.#call('train', [options]);
  }

  /** Same as Classifier.addClass. */
  async addClass(spec) {
    await this.#call('addClass', [spec]);
    this.#classes = this.#stats.classes.map((entry) => entry.name);
  }

  /** Same as Classifier.removeClass. */
  async removeClass(name) {
    await this.#call('removeClass', [name]);
    this.#classes = this.#stats.classes.map((entry) => entry.name);
  }

  /** Same as Classifier.memory; each call runs in the worker. */
  get memory() {
    return {
      export: (options = {}) => this.#call('memoryExport', [options]),
      import: async (file, options) => {
        const result = await this.#call('memoryImport', [file, options]);
        this.#classes = this.#stats.classes.map((entry) => entry.name);
        return result;
      },
      clear: () => this.#call('memoryClear', []),
    };
  }

  /** Same as Classifier.stats, as of the last reply from the worker. */
  stats() {
    return structuredClone(this.#stats);
  }

  /** Names of the classes, in order. */
  get classes() {
    return [...this.#classes];
  }

  /**
   * Terminates the worker once the calls already made have finished; later
   * calls fail with `disposed`.
   *
   * @returns {Promise<void>}
   */
  async dispose() {
    if (this.#disposed) return;
    this.#disposed = true;
    await this.#lastCall;
    await this.#terminate();
  }

  async #terminate() {
    this.#disposed = true;
    await this.#port?.terminate();
  }
}
