// Loads the dualmem WebAssembly core and wraps its Embind handles in small
// JavaScript classes that copy inputs in with one typed-array `set`, turn
// every non-zero status into a DualmemError, and free the C++ objects on
// `dispose()`.

import { DualmemError } from './errors.js';

/** Memory precisions of the DMN slots, as the core numbers them. */
export const PRECISIONS = Object.freeze({ float32: 0, float16: 1, int8: 2 });

/**
 * Library defaults of the DMN step, the same as DmnConfig in src/dmn.h. The
 * logit scale, β, selection ratio and fusion weights were chosen on
 * validation data only: held-out training images of the embedded model and
 * shifted copies of them. models/ACCURACY.md describes the procedure.
 */
export const DMN_DEFAULTS = Object.freeze({
  // CLIP's logit scale, exp(4.6052) = 100, as in the released CLIP models.
  logitScale: 100,
  // Sharpness β of the readout weight exp(-β(1 - cos)); Dual Memory Networks
  // (Zhang et al., CVPR 2024) use 5.5, validation preferred 3.
  beta: 3,
  capacity: 50,
  // Share of views whose predictions make the pseudo-label; the paper uses
  // 0.1 of 64 views, and validation at 8 views preferred 0.5 (4 views).
  selectionRatio: 0.5,
  weights: Object.freeze({ text: 1.0, dynamic: 1.0, static: 4.0 }),
  precision: 'float32',
});

/**
 * Defaults of few-shot training. The epochs, learning rate and per-class rate
 * scale were chosen on validation data (`dualmem eval --tune-train`, see
 * models/ACCURACY.md): with 4 and 16 shots a short, gentle training did best,
 * and longer or faster training fitted the shots and lost on new images. The
 * core's TrainConfig (src/adapter.h) keeps its own starting values, which its
 * tests are built around; this object is what the JavaScript API passes.
 */
export const TRAIN_DEFAULTS = Object.freeze({
  epochs: 10,
  learningRate: 3e-4,
  weightDecay: 0.01,
  labelSmoothing: 0.1,
  batchSize: 32,
  seed: 0,
  // Learning-rate factor of the per-slot and per-class offsets against the
  // shared query offsets (see src/adapter.h).
  perClassRateScale: 1,
});

/**
 * Crop and flip ranges of test-time views, as in the core's AugmentConfig
 * (src/augment.h): the crop covers a share of the image area in
 * [minScale, maxScale] with a width/height ratio in [minRatio, maxRatio].
 */
export const VIEW_DEFAULTS = Object.freeze({
  minScale: 0.5,
  maxScale: 1,
  minRatio: 3 / 4,
  maxRatio: 4 / 3,
  flipProbability: 0.5,
});

const isNode =
  typeof process !== 'undefined' && typeof process.versions?.node === 'string' &&
  typeof window === 'undefined';

// In a variable, so that bundlers do not try to pack a Node module for browsers.
const NODE_FS = 'node:fs/promises';

// Literal import() and new URL(..., import.meta.url) calls, so that bundlers
// such as Vite find the glue and the .wasm files and copy them into a build.
const WASM_FILES = {
  simd: {
    glue: () => import('../wasm/dualmem_core_simd.mjs'),
    wasm: () => new URL('../wasm/dualmem_core_simd.wasm', import.meta.url),
  },
  scalar: {
    glue: () => import('../wasm/dualmem_core_scalar.mjs'),
    wasm: () => new URL('../wasm/dualmem_core_scalar.wasm', import.meta.url),
  },
};

const loadedCores = new Map();

/**
 * Loads the core module once per variant and returns it.
 *
 * @param {object} [options]
 * @param {'simd'|'scalar'} [options.variant='simd'] which build to load
 * @param {string|URL} [options.wasmUrl] where the `.wasm` file is served, when
 *   it is not beside the package's `web/wasm/` folder
 * @returns {Promise<object>} the Emscripten module
 * @throws {DualmemError} `wasm_unavailable` when the module cannot be loaded
 */
export async function loadCore(options = {}) {
  const variant = options.variant ?? 'simd';
  if (!(variant in WASM_FILES)) {
    throw new DualmemError('bad_option',
      `variant is ${JSON.stringify(variant)}, expected "simd" or "scalar"`);
  }
  const key = `${variant}|${options.wasmUrl ?? ''}`;
  if (!loadedCores.has(key)) {
    const loading = instantiate(variant, options.wasmUrl);
    loadedCores.set(key, loading);
    loading.catch(() => loadedCores.delete(key));
  }
  return loadedCores.get(key);
}

async function instantiate(variant, wasmUrl) {
  const files = WASM_FILES[variant];
  const url = wasmUrl ? new URL(wasmUrl, import.meta.url) : files.wasm();
  try {
    const { default: factory } = await files.glue();
    if (isNode && url.protocol === 'file:') {
      // The Emscripten 3.1.6 glue would fetch() the file, which Node cannot
      // do for file: URLs, so hand it the bytes.
      const { readFile } = await import(/* @vite-ignore */ NODE_FS);
      return await factory({ wasmBinary: await readFile(url) });
    }
    return await factory({ locateFile: () => url.href });
  } catch (error) {
    throw new DualmemError('wasm_unavailable',
      `could not load the dualmem ${variant} WebAssembly core from ${url.href}: ` +
      `${error?.message ?? error}. Run \`npm run build\`, or pass wasmUrl with the ` +
      'location of dualmem_core_*.wasm', { cause: error });
  }
}

/** Throws a DualmemError for a non-zero status of `handle`. */
function check(handle, status) {
  if (status !== 0) throw new DualmemError(handle.errorName(), handle.errorMessage());
}

/** Returns a fingerprint given as 32 bytes or hex digits as a hex string. */
function fingerprintHex(fingerprint) {
  if (typeof fingerprint === 'string') return fingerprint;
  if (fingerprint instanceof Uint8Array && fingerprint.length === 32) {
    return Array.from(fingerprint, (b) => b.toString(16).padStart(2, '0')).join('');
  }
  throw new DualmemError('invalid_argument',
    `fingerprint is ${fingerprint?.constructor?.name ?? typeof fingerprint}` +
    `${fingerprint?.length === undefined ? '' : ` of length ${fingerprint.length}`}, ` +
    'expected 64 hex digits or a Uint8Array of 32 bytes');
}

function toFloat32(values, what) {
  if (values instanceof Float32Array) return values;
  if (ArrayBuffer.isView(values) || Array.isArray(values)) return Float32Array.from(values);
  throw new DualmemError('invalid_argument',
    `${what} is ${values === null ? 'null' : typeof values}, expected a Float32Array or an array of numbers`);
}

/**
 * The training-free Dual Memory Network step over class text embeddings, a
 * static memory of labelled shots and a dynamic memory of past test images.
 */
export class DualMemory {
  /**
   * @param {object} core module from `loadCore()`
   * @param {number} dim embedding dimension
   * @param {object} [config] overrides of DMN_DEFAULTS
   * @throws {DualmemError} `invalid_argument` for a bad dimension or setting
   */
  constructor(core, dim, config = {}) {
    const weights = { ...DMN_DEFAULTS.weights, ...(config.weights ?? {}) };
    const precisionName = config.precision ?? DMN_DEFAULTS.precision;
    if (!(precisionName in PRECISIONS)) {
      throw new DualmemError('invalid_argument',
        `precision is ${JSON.stringify(precisionName)}, expected "float32", "float16" or "int8"`);
    }
    this.handle = new core.DmnHandle();
    try {
      check(this.handle, this.handle.init(dim,
        config.logitScale ?? DMN_DEFAULTS.logitScale,
        config.beta ?? DMN_DEFAULTS.beta,
        config.capacity ?? DMN_DEFAULTS.capacity,
        config.selectionRatio ?? DMN_DEFAULTS.selectionRatio,
        weights.text, weights.dynamic, weights.static,
        PRECISIONS[precisionName]));
    } catch (error) {
      this.handle.delete();
      this.handle = null;
      throw error;
    }
    this.dim = dim;
    this.precision = precisionName;
  }

  #write(values, what) {
    const floats = toFloat32(values, what);
    this.handle.inputView(floats.length).set(floats);
  }

  /** Appends a class; returns its index. */
  addClass(textEmbedding) {
    this.#write(textEmbedding, 'textEmbedding');
    check(this.handle, this.handle.addClass());
    return this.handle.numClasses() - 1;
  }

  /** Removes a class; later classes move down by one index. */
  removeClass(classIndex) {
    check(this.handle, this.handle.removeClass(classIndex));
  }

  setClassEmbedding(classIndex, textEmbedding) {
    this.#write(textEmbedding, 'textEmbedding');
    check(this.handle, this.handle.setClassEmbedding(classIndex));
  }

  /** Adds a labelled shot: `views` contains numViews × dim floats, view 0 the original. */
  addShot(classIndex, views, numViews = 1) {
    this.#write(views, 'views');
    check(this.handle, this.handle.addShot(classIndex, numViews));
  }

  /**
   * Adds a test image that a user labelled. It counts and reads out as a
   * shot; snapshots record it as a correction.
   */
  addCorrection(classIndex, views, numViews = 1) {
    this.#write(views, 'views');
    check(this.handle, this.handle.addCorrection(classIndex, numViews));
  }

  /** Removes every shot of a class, corrections included. */
  clearShots(classIndex) {
    check(this.handle, this.handle.clearShots(classIndex));
  }

  /**
   * Serializes the memories (configuration, classes, every slot with its
   * metadata) into a versioned binary snapshot; the format is described in
   * src/snapshot.h.
   *
   * @param {string|Uint8Array} fingerprint the model's fingerprint: 64 hex
   *   digits or 32 bytes, e.g. a SHA-256 over the model files, tokenizer and
   *   preprocessing config
   * @param {object} [options]
   * @param {string[]} [options.classNames] one name per class; empty names
   *   when left out
   * @returns {Uint8Array} a copy of the snapshot bytes
   * @throws {DualmemError} `invalid_argument` for a malformed fingerprint or
   *   names, `limit_exceeded` when a count or name is above the format's maximum
   */
  saveSnapshot(fingerprint, options = {}) {
    const handle = this.handle;
    handle.clearSnapshotNames();
    for (const name of options.classNames ?? []) handle.addSnapshotName(String(name));
    check(handle, handle.saveSnapshot(fingerprintHex(fingerprint)));
    return handle.snapshotView().slice();
  }

  /**
   * Replaces the memories, configuration included, with those of a
   * snapshot. A snapshot that does not load leaves this memory unchanged.
   *
   * @param {Uint8Array|ArrayBuffer} bytes from `saveSnapshot`
   * @param {object} [options]
   * @param {string|Uint8Array} [options.expectedFingerprint] the current
   *   model's fingerprint; a snapshot of another model is rejected
   * @returns {{classNames: string[], fingerprint: string}} the stored class
   *   names and the snapshot's fingerprint as 64 hex digits
   * @throws {DualmemError} `parse_error` (corrupt or truncated),
   *   `unsupported` (written by a newer dualmem), `failed_precondition`
   *   (another model's fingerprint), `limit_exceeded` or `invalid_argument`;
   *   the error's `offset` (in bytes) and `field` name the first invalid field
   */
  loadSnapshot(bytes, options = {}) {
    const view = bytes instanceof ArrayBuffer ? new Uint8Array(bytes) : bytes;
    if (!(view instanceof Uint8Array)) {
      throw new DualmemError('invalid_argument',
        `bytes is ${view?.constructor?.name ?? typeof view}, expected a Uint8Array or ArrayBuffer`);
    }
    const expected = options.expectedFingerprint === undefined
      ? '' : fingerprintHex(options.expectedFingerprint);
    const handle = this.handle;
    handle.snapshotBufferView(view.length).set(view);
    const status = handle.loadSnapshot(expected);
    if (status !== 0) {
      const offset = handle.snapshotErrorOffset();
      throw new DualmemError(handle.errorName(), handle.errorMessage(),
        offset < 0 ? {} : { offset, field: handle.snapshotErrorField() });
    }
    this.dim = handle.dim();
    this.precision = Object.keys(PRECISIONS)[handle.precision()];
    const classNames = [];
    for (let i = 0; i < handle.snapshotNameCount(); i += 1) classNames.push(handle.snapshotName(i));
    return { classNames, fingerprint: handle.snapshotFingerprint() };
  }

  /**
   * Creates a DualMemory from a snapshot; see `loadSnapshot`.
   *
   * @param {object} core module from `loadCore()`
   * @returns {{memory: DualMemory, classNames: string[], fingerprint: string}}
   * @throws {DualmemError} as `loadSnapshot`
   */
  static fromSnapshot(core, bytes, options = {}) {
    // Any valid network will do: loading replaces it whole.
    const memory = new DualMemory(core, 1);
    try {
      return { memory, ...memory.loadSnapshot(bytes, options) };
    } catch (error) {
      memory.dispose();
      throw error;
    }
  }

  setWeights({ text, dynamic, static: staticWeight }) {
    check(this.handle, this.handle.setWeights(text, dynamic, staticWeight));
  }

  /**
   * Runs one DMN step on the views of a test image.
   *
   * @param {Float32Array|number[]} views numViews × dim floats, view 0 the original
   * @param {number} [numViews=1]
   * @param {object} [options] `timestamp` (ms, default Date.now()) and
   *   `update` (default true; false leaves the memory untouched)
   * @returns {{label:number, pseudoLabel:number, entropy:number, inserted:boolean,
   *   text:Float32Array, confident:Float32Array, static:Float32Array|null,
   *   dynamic:Float32Array, fused:Float32Array}} copies of the core's outputs
   * @throws {DualmemError} for wrong lengths or non-finite values
   */
  step(views, numViews = 1, options = {}) {
    this.#write(views, 'views');
    const update = options.update ?? true;
    check(this.handle, this.handle.step(numViews, options.timestamp ?? Date.now(), update));
    const handle = this.handle;
    return {
      label: handle.label(),
      pseudoLabel: handle.pseudoLabel(),
      entropy: handle.entropy(),
      inserted: handle.inserted(),
      text: handle.textView().slice(),
      confident: handle.confidentView().slice(),
      static: handle.hasStatic() ? handle.staticView().slice() : null,
      dynamic: handle.dynamicView().slice(),
      fused: handle.fusedView().slice(),
    };
  }

  /**
   * Stores a saved test image (dim floats) as a dynamic slot, as when a
   * memory is read back from storage.
   * @throws {DualmemError} `limit_exceeded` when the class is full
   */
  restoreDynamic(classIndex, view, entropy, timestamp = Date.now()) {
    this.#write(view, 'view');
    check(this.handle, this.handle.restoreDynamic(classIndex, entropy, timestamp));
  }

  /** Empties the dynamic memory of every class. */
  resetDynamic() {
    this.handle.resetDynamic();
  }

  /**
   * Removes every dynamic slot stored before `cutoffMs`; shots and
   * corrections stay whatever their age.
   *
   * @param {number} cutoffMs ms since the epoch
   * @returns {number} slots removed
   * @throws {DualmemError} `invalid_argument` for a non-finite cutoff
   */
  dropDynamicOlderThan(cutoffMs) {
    check(this.handle, this.handle.dropDynamicOlderThan(cutoffMs));
    return this.handle.droppedCount();
  }

  /**
   * Removes the `count` dynamic slots of highest entropy over all classes
   * (the older first on ties); shots and corrections stay.
   *
   * @param {number} count slots to remove; fewer go when fewer exist
   * @returns {number} slots removed
   * @throws {DualmemError} `invalid_argument` for a negative count
   */
  dropHighestEntropyDynamic(count) {
    check(this.handle, this.handle.dropHighestEntropyDynamic(count));
    return this.handle.droppedCount();
  }

  get numClasses() {
    return this.handle.numClasses();
  }

  dynamicCount(classIndex) {
    return this.handle.dynamicCount(classIndex);
  }

  shotCount(classIndex) {
    return this.handle.shotCount(classIndex);
  }

  /**
   * Benchmark baseline, not needed to classify: dots `query` with every
   * stored slot of every class once, with the kernels and the stored vectors
   * that `step` reads, and does nothing else. Its time is the least a step
   * over this memory can take; the results stay inside the core.
   *
   * @param {Float32Array|number[]} query dim floats, used as given (a step
   *   would rescale them to unit length first)
   * @throws {DualmemError} `invalid_argument` when query does not have dim values
   */
  benchmarkStreamingPass(query) {
    this.#write(query, 'query');
    check(this.handle, this.handle.streamingPass());
  }

  /** Bytes held by stored vectors, slot metadata and Gram matrices. */
  get memoryBytes() {
    return this.handle.memoryBytes();
  }

  /**
   * Trains the few-shot adapter on the shots and corrections, replacing any
   * earlier one; later steps use it until the classes, text embeddings,
   * shots or corrections change. Training is synchronous and costs about
   * 6 × dim multiply-adds per epoch, shot and static-memory slot.
   *
   * @param {object} [options] fields of TRAIN_DEFAULTS: `epochs`,
   *   `learningRate`, `weightDecay`, `labelSmoothing`, `batchSize`, `seed`
   *   (an integer below 2^53) and `perClassRateScale`
   * @returns {number[]} the mean loss of each epoch
   * @throws {DualmemError} `invalid_argument` for a bad option, a network
   *   without shots, or a loss that stops being finite; the network is unchanged
   */
  train(options = {}) {
    const o = { ...TRAIN_DEFAULTS, ...options };
    check(this.handle, this.handle.train(o.epochs, o.learningRate, o.weightDecay,
      o.labelSmoothing, o.seed, o.batchSize, o.perClassRateScale));
    return Array.from(this.handle.lossCurveView());
  }

  /** Drops the trained adapter; steps go back to the training-free readout. */
  resetAdapter() {
    this.handle.resetAdapter();
  }

  /** True while a trained adapter is in use. */
  get trained() {
    return this.handle.trained();
  }

  /** Frees the C++ object; the instance is unusable afterwards. */
  dispose() {
    this.handle?.delete();
    this.handle = null;
  }
}

/** The CLIP BPE tokenizer of the core, loaded from a tokenizer.json text. */
export class Tokenizer {
  /**
   * @param {object} core module from `loadCore()`
   * @param {string} tokenizerJson contents of a Hugging Face tokenizer.json
   * @throws {DualmemError} `parse_error` or `invalid_argument` naming the bad field
   */
  constructor(core, tokenizerJson) {
    this.handle = new core.TokenizerHandle();
    try {
      check(this.handle, this.handle.load(tokenizerJson));
    } catch (error) {
      this.handle.delete();
      this.handle = null;
      throw error;
    }
  }

  /** Returns start token, content tokens and end token, untruncated. */
  encode(text) {
    check(this.handle, this.handle.encode(String(text)));
    return this.handle.idsView().slice();
  }

  /**
   * Returns `{ ids, attentionMask }` of exactly `contextLength` entries:
   * truncated to the start token, contextLength − 2 content tokens and the
   * end token, then padded.
   */
  encodeForModel(text, contextLength = 77) {
    check(this.handle, this.handle.encodeForModel(String(text), contextLength));
    return {
      ids: this.handle.idsView().slice(),
      attentionMask: this.handle.attentionMaskView().slice(),
    };
  }

  dispose() {
    this.handle?.delete();
    this.handle = null;
  }
}

/** CLIP image preprocessing of the core, configured by a preprocessor_config.json. */
export class Preprocessor {
  /**
   * @param {object} core module from `loadCore()`
   * @param {string} configJson contents of a Hugging Face preprocessor_config.json
   * @throws {DualmemError} `parse_error` or `invalid_argument` naming the bad field
   */
  constructor(core, configJson) {
    this.handle = new core.PreprocessorHandle();
    try {
      check(this.handle, this.handle.configure(configJson));
    } catch (error) {
      this.handle.delete();
      this.handle = null;
      throw error;
    }
  }

  /**
   * Turns 8-bit pixels into a CHW float32 tensor of 3 × cropHeight × cropWidth.
   *
   * @param {Uint8Array|Uint8ClampedArray} pixels row-major, `channels` bytes a pixel
   * @param {number} width
   * @param {number} height
   * @param {1|3|4} channels gray, RGB or RGBA
   * @throws {DualmemError} `invalid_argument` or `limit_exceeded`
   */
  run(pixels, width, height, channels) {
    if (!(pixels instanceof Uint8Array || pixels instanceof Uint8ClampedArray)) {
      throw new DualmemError('invalid_argument',
        `pixels is ${pixels?.constructor?.name ?? typeof pixels}, expected a Uint8Array or Uint8ClampedArray`);
    }
    this.handle.pixelView(pixels.length).set(pixels);
    check(this.handle, this.handle.run(width, height, channels));
    return this.handle.outputView().slice();
  }

  /**
   * Sets the crop and flip ranges of `runViews`.
   *
   * @param {object} options fields of VIEW_DEFAULTS; missing ones take the default
   * @throws {DualmemError} `invalid_argument` for a range outside
   *   0 < minScale <= maxScale <= 1, 0 < minRatio <= maxRatio, flipProbability in [0, 1]
   */
  configureViews(options = {}) {
    const o = { ...VIEW_DEFAULTS, ...options };
    check(this.handle, this.handle.configureViews(o.minScale, o.maxScale, o.minRatio,
      o.maxRatio, o.flipProbability));
  }

  /**
   * Makes `numViews` CHW tensors from one image, back to back: view 0 is
   * `run`'s output, views 1.. are seeded random resized crops with random
   * horizontal flips, each resampled to the crop size. The same seed gives
   * the same bytes in every build, and the cost grows linearly with numViews.
   *
   * @param {Uint8Array|Uint8ClampedArray} pixels row-major, `channels` bytes a pixel
   * @param {number} width
   * @param {number} height
   * @param {1|3|4} channels gray, RGB or RGBA
   * @param {number} numViews 1 to 128
   * @param {number} [seed=0] an integer below 2^53
   * @returns {Float32Array} numViews × 3 × cropHeight × cropWidth floats
   * @throws {DualmemError} `invalid_argument` or `limit_exceeded`
   */
  runViews(pixels, width, height, channels, numViews, seed = 0) {
    if (!(pixels instanceof Uint8Array || pixels instanceof Uint8ClampedArray)) {
      throw new DualmemError('invalid_argument',
        `pixels is ${pixels?.constructor?.name ?? typeof pixels}, expected a Uint8Array or Uint8ClampedArray`);
    }
    this.handle.pixelView(pixels.length).set(pixels);
    check(this.handle, this.handle.runViews(width, height, channels, numViews, seed));
    return this.handle.outputView().slice();
  }

  get cropWidth() {
    return this.handle.cropWidth();
  }

  get cropHeight() {
    return this.handle.cropHeight();
  }

  dispose() {
    this.handle?.delete();
    this.handle = null;
  }
}
