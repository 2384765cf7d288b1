// Type declarations of the dualmem main entry (web/src/index.js).

/** Codes of DualmemError; see the README for what causes each. */
export type DualmemErrorCode =
  | 'bad_option' | 'unknown_class' | 'unknown_result' | 'duplicate_class'
  | 'model_not_found' | 'model_not_clip' | 'wasm_unavailable' | 'worker_unavailable'
  | 'image_not_decodable' | 'image_too_large' | 'decoder_unavailable' | 'not_found'
  | 'storage_unavailable' | 'disposed'
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
  /** Sharpness β of the readout weight exp(-β(1 - cos)). Default 5.5. */
  beta?: number;
  /** Share of views kept as confident. Default 0.1. */
  selectionRatio?: number;
  /** Scale of cosine similarities before softmax. Default 100. */
  logitScale?: number;
  /** Fusion weights. Default { text: 1, dynamic: 0.3, static: 1 }; text must be > 0. */
  weights?: { text?: number; dynamic?: number; static?: number };
}

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
  /** Milliseconds per stage. */
  timings: { decode: number; preprocess: number; encode: number; memory: number; total: number };
  /** Shadow mode only: the fused prediction that adaptive mode would return. */
  adaptive?: { label: string; score: number };
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
}

export interface ClassifierEventMap {
  progress: CustomEvent<ProgressDetail>;
  memoryupdate: CustomEvent<{
    reason: 'classify' | 'examples' | 'correct' | 'addClass' | 'removeClass';
    memory: 'dynamic' | 'static' | 'classes';
    className: string;
  }>;
  storagewarning: CustomEvent<{ message: string; error?: unknown }>;
}

export interface Classifier extends EventTarget {
  /** Classifies one image. Errors: image_not_decodable, image_too_large, not_found, disposed. */
  classify(input: ImageInput): Promise<ClassifyResult>;
  /** Adds labelled images to a class's static memory. Errors: unknown_class, image_not_decodable. */
  addExamples(className: string, inputs: ImageInput | ImageInput[]): Promise<{ className: string; added: number; shots: number }>;
  /** Makes a recent result a labelled shot of `label`. Errors: unknown_result, unknown_class. */
  correct(id: number, label: string): Promise<{ id: number; label: string; shots: number }>;
  /** Adds a class. Errors: bad_option, duplicate_class. */
  addClass(spec: ClassSpec): Promise<void>;
  /** Removes a class and its memories. Errors: unknown_class. */
  removeClass(name: string): Promise<void>;
  stats(): ClassifierStats;
  readonly classes: string[];
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

/** Deletes the cached model files. Resolves to whether anything was deleted. */
export function clearModelCache(storage?: CacheStorage): Promise<boolean>;

export const CLIP_IMAGENET_TEMPLATES: readonly string[];
export const SIMPLE_TEMPLATES: readonly string[];
export const MODES: readonly Mode[];
export const DEFAULTS: Readonly<Required<Omit<ClassifierOptions,
  'model' | 'classes' | 'wasmUrl' | 'ortWasmPaths' | 'onProgress' | 'onWarning'>>>;
