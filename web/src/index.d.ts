// Type declarations of the dualmem main entry (web/src/index.js).

/** Codes of DualmemError; see the README for what causes each. */
export type DualmemErrorCode =
  | 'bad_option' | 'unknown_class' | 'unknown_result' | 'duplicate_class'
  | 'model_not_found' | 'model_not_clip' | 'wasm_unavailable' | 'worker_unavailable'
  | 'image_not_decodable' | 'image_too_large' | 'decoder_unavailable' | 'not_found'
  | 'storage_unavailable' | 'disposed'
  | 'storage_blocked' | 'memory_model_mismatch' | 'memory_corrupt' | 'memory_key_required'
  | 'memory_key_invalid' | 'memory_file_invalid'
  | 'invalid_argument' | 'parse_error' | 'limit_exceeded' | 'unsupported' | 'internal';

/** The one error type of dualmem; `code` is stable, `message` is for people. */
export class DualmemError extends Error {
  constructor(code: DualmemErrorCode | string, message: string, options?: { cause?: unknown; [field: string]: unknown });
  readonly name: 'DualmemError';
  readonly code: DualmemErrorCode;
  /** With `bad_option`: the option, the value seen and what is allowed. */
  readonly option?: string;
  readonly value?: unknown;
  readonly allowed?: unknown;
}

export type Mode = 'adaptive' | 'shadow' | 'frozen';
export type Precision = 'float32' | 'float16' | 'int8';
export type ClassSpec = string | { name: string; prompts?: string[] };

/** Image inputs; in Node also a Buffer, a file path or a file: URL. */
export type ImageInput =
  | Blob | ImageBitmap | ImageData | HTMLImageElement | HTMLCanvasElement | OffscreenCanvas
  | ArrayBuffer | ArrayBufferView | URL | string;

export interface MemoryOptions {
  /** Dynamic memory slots per class. Default 50. */
  capacityPerClass?: number;
  /** Element type of stored slots. Default 'float32'. */
  precision?: Precision;
  /** Sharpness β of the readout weight exp(-β(1 - cos)). Default 3. */
  beta?: number;
  /** Share of views kept as confident. Default 0.5. */
  selectionRatio?: number;
  /** Scale of cosine similarities before softmax. Default 100. */
  logitScale?: number;
  /** Fusion weights. Default { text: 1, dynamic: 1, static: 4 }; text must be > 0. */
  weights?: { text?: number; dynamic?: number; static?: number };
  /** Dynamic slots older than this many days are dropped on open and on each write. Default null (kept). */
  maxAgeDays?: number | null;
  /** Budget of the stored snapshot in bytes; the highest-entropy dynamic slots go first. Default null. */
  maxBytes?: number | null;
  /** Encryption at rest with AES-GCM. Default null (stored in the clear). */
  encryption?: MemoryEncryption | null;
}

/** A passphrase (PBKDF2-SHA-256), a key, or 'device': a non-extractable key generated and kept in IndexedDB. */
export type MemoryEncryption =
  | { passphrase: string; iterations?: number }
  | { key: CryptoKey | Uint8Array | ArrayBuffer | 'device' };

export interface ProgressDetail {
  /** 'download' for model file bytes, 'prompts' for encoded prompt texts. */
  stage: 'download' | 'prompts';
  /** Path inside the model folder, for 'download'. */
  file?: string;
  loaded: number;
  /** 0 when the server sent no Content-Length. */
  total: number;
}

export interface ClassifierOptions {
  /** Folder path (Node) or URL of a CLIP in the Hugging Face layout. Default: the embedded models/tiny-clip. */
  model?: string | URL;
  /** Class names, or { name, prompts } with prompts used instead of the templates. */
  classes: ClassSpec[];
  /** 'clip-imagenet' (default, 80 templates), 'simple' (7) or a list of strings with '{}'. */
  templates?: 'clip-imagenet' | 'simple' | string[];
  /** Default 'adaptive'. */
  mode?: Mode;
  memory?: MemoryOptions;
  /** Test-time views per image: the image and views - 1 seeded crops. Default 1. */
  views?: number;
  /** Seed of the crops of the views. Default 0. */
  seed?: number;
  /** ONNX Runtime threads; 'auto' (default) uses up to 4 where the page is cross-origin isolated. */
  threads?: 'auto' | number;
  /** Run everything in a Web Worker (worker_threads in Node). Default false. */
  worker?: boolean;
  /** Load the int8 ONNX files. Default true. */
  quantized?: boolean;
  /** Cache Storage of model files and prompt embeddings: 'auto' (default), true (required) or false. */
  cache?: 'auto' | boolean;
  /** How many recent results `correct` can refer to. Default 256. */
  keepResults?: number;
  /** Location of dualmem_core_simd.wasm. Default: beside the package's web/wasm/. */
  wasmUrl?: string | URL;
  /** ONNX Runtime's ort.env.wasm.wasmPaths. Default: ONNX Runtime's own location. */
  ortWasmPaths?: string | URL | Record<string, string>;
  /** Called while model files download and prompts are encoded. */
  onProgress?: (detail: ProgressDetail) => void;
  /** Called with non-fatal problems. Default: console.warn. */
  onWarning?: (message: string) => void;
  /** Store of the memories: 'auto' (default: IndexedDB where it exists, else memory), 'indexeddb' or 'memory'. */
  store?: 'auto' | 'indexeddb' | 'memory';
  /** Name of the stored memory; classifiers of one namespace share it. Default 'default'. */
  namespace?: string;
  /** Ask the browser for persistent storage (navigator.storage.persist()). Default false. */
  persist?: boolean;
  /** A stored memory of another model: 'throw' memory_model_mismatch (default) or 'clear' it. */
  onModelMismatch?: 'throw' | 'clear';
}

export interface ClassifyResult {
  /** Pass to `correct`. Counts up from 1 per classifier. */
  id: number;
  label: string;
  /** Probability of `label` in the prediction of the mode. */
  score: number;
  /** Up to 5 classes by falling score. */
  top: { label: string; score: number }[];
  /** Per-class probabilities of each head; static is null without shots, dynamic is null in frozen mode. */
  sources: {
    text: Record<string, number>;
    static: Record<string, number> | null;
    dynamic: Record<string, number> | null;
  };
  /**
   * Milliseconds per stage. memory is the DMN step alone. total runs from the
   * call to the end of the step, so it counts the wait for the memory's lock
   * but not the write of the memory to IndexedDB after the step.
   */
  timings: { decode: number; preprocess: number; encode: number; memory: number; total: number };
  /** Shadow mode only: the fused prediction that adaptive mode would return. */
  adaptive?: { label: string; score: number };
  /** True when the memory after this call is stored; false with store 'memory' or after a storage failure. */
  durable: boolean;
}

export interface ClassifierStats {
  mode: Mode;
  precision: Precision;
  views: number;
  /** Bytes held by the memories. */
  bytes: number;
  /** static: shot images; dynamic: dynamic slots in use. */
  classes: { name: string; static: number; dynamic: number }[];
  classified: number;
  corrected: number;
  /** Share of images whose adaptive and frozen labels agreed; null in frozen mode or before any image. */
  agreement: number | null;
  /** Store of the memories; sequence counts the stored updates. */
  storage: { store: 'indexeddb' | 'memory'; namespace: string; sequence: number;
    encrypted: 'passphrase' | 'key' | 'device' | null } | null;
}

/** `classifier.memory`: the stored memories as a file, and their removal. */
export interface ClassifierMemory {
  /** A versioned file of the memories (embeddings, class names, slot metadata), optionally encrypted. */
  export(options?: { encrypt?: { passphrase: string } | { key: CryptoKey | Uint8Array } }): Promise<Blob>;
  /**
   * Replaces the memories and classes with a file's. Errors: memory_file_invalid, unsupported,
   * memory_model_mismatch, memory_key_required, memory_key_invalid, parse_error.
   */
  import(file: Blob | ArrayBuffer | Uint8Array, options?: { passphrase?: string; key?: CryptoKey | Uint8Array }):
    Promise<{ durable: boolean }>;
  /** Deletes every stored record of the namespace and empties the memories; the classes stay. */
  clear(): Promise<void>;
}

export interface ClassifierEventMap {
  progress: CustomEvent<ProgressDetail>;
  memoryupdate: CustomEvent<{
    reason: 'classify' | 'examples' | 'correct' | 'addClass' | 'removeClass' | 'otherTab';
    memory: 'dynamic' | 'static' | 'classes' | 'all';
    className: string | null;
  }>;
  storagewarning: CustomEvent<{ message: string; error?: unknown }>;
}

/** Options of `classifier.train`; the defaults are TRAIN_DEFAULTS of web/src/core.js. */
export interface TrainOptions {
  /** Passes over the examples, 1 to 10000. Default 10. */
  epochs?: number;
  /** Peak AdamW step size, above 0, with a cosine schedule. Default 3e-4. */
  learningRate?: number;
  /** Decoupled weight decay, pulling the offsets back to zero. Default 0.01. */
  weightDecay?: number;
  /** Share of the target spread over all classes, 0 to below 1. Default 0.1. */
  labelSmoothing?: number;
  /** Examples per AdamW step. Default 32. */
  batchSize?: number;
  /** Seed of shuffling and view choice. Default 0. */
  seed?: number;
  /** Learning-rate factor of the per-class offsets against the shared query offsets. Default 1. */
  perClassRateScale?: number;
}

export interface Classifier extends EventTarget {
  /** Classifies one image. Errors: image_not_decodable, image_too_large, not_found, disposed. */
  classify(input: ImageInput): Promise<ClassifyResult>;
  /** Adds labelled images to a class's static memory. Errors: unknown_class, image_not_decodable. */
  addExamples(className: string, inputs: ImageInput | ImageInput[]):
    Promise<{ className: string; added: number; shots: number; durable: boolean }>;
  /** Makes a recent result a labelled shot of `label`. Errors: unknown_result, unknown_class. */
  correct(id: number, label: string): Promise<{ id: number; label: string; shots: number; durable: boolean }>;
  /**
   * Trains the few-shot adapter on the examples and corrections; returns the
   * mean loss of each epoch. Errors: bad_option, no_examples,
   * invalid_argument (the loss stopped being finite), disposed.
   */
  train(options?: TrainOptions): Promise<number[]>;
  /** Adds a class. Errors: bad_option, duplicate_class. */
  addClass(spec: ClassSpec): Promise<void>;
  /** Removes a class and its memories. Errors: unknown_class. */
  removeClass(name: string): Promise<void>;
  stats(): ClassifierStats;
  readonly classes: string[];
  /** Export, import and clearing of the stored memories. */
  readonly memory: ClassifierMemory;
  /** Frees everything after the calls already made; later calls fail with `disposed`. */
  dispose(): Promise<void>;
  addEventListener<K extends keyof ClassifierEventMap>(
    type: K, listener: (event: ClassifierEventMap[K]) => void, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions): void;
}

/**
 * Creates a classifier. Options are checked before any download.
 * Errors: bad_option, storage_unavailable, model_not_found, model_not_clip,
 * wasm_unavailable, worker_unavailable.
 */
export function createClassifier(options: ClassifierOptions): Promise<Classifier>;

/**
 * Deletes every stored memory record of a namespace without loading a model,
 * e.g. after memory_model_mismatch or memory_corrupt. Errors: storage_blocked.
 */
export function clearMemory(options?: { namespace?: string }): Promise<void>;

/** Deletes the cached model files. Resolves to whether anything was deleted. */
export function clearModelCache(storage?: CacheStorage): Promise<boolean>;

export const CLIP_IMAGENET_TEMPLATES: readonly string[];
export const SIMPLE_TEMPLATES: readonly string[];
export const MODES: readonly Mode[];
export const DEFAULTS: Readonly<Required<Omit<ClassifierOptions,
  'model' | 'classes' | 'wasmUrl' | 'ortWasmPaths' | 'onProgress' | 'onWarning' | 'memory'>>> & {
  memory: Readonly<Required<MemoryOptions>>;
};
