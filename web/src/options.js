// Validation of the options of createClassifier. Every check runs before any
// file is downloaded, so a typo costs nothing. A bad value raises
// `bad_option` naming the option, the value seen and the values allowed.

import { DMN_DEFAULTS, PRECISIONS } from './core.js';
import { DualmemError } from './errors.js';
import { resolveTemplates } from './templates.js';

export const MODES = Object.freeze(['adaptive', 'shadow', 'frozen']);

/** Most test-time views per image; each view costs one image-encoder run. */
export const MAX_VIEWS = 64;

/** Longest accepted class name, in UTF-16 code units. */
export const MAX_CLASS_NAME_LENGTH = 200;

/** Defaults of every option but `model` (the embedded model) and `classes`. */
export const DEFAULTS = Object.freeze({
  templates: 'clip-imagenet',
  mode: 'adaptive',
  memory: Object.freeze({
    capacityPerClass: DMN_DEFAULTS.capacity,
    precision: DMN_DEFAULTS.precision,
    beta: DMN_DEFAULTS.beta,
    selectionRatio: DMN_DEFAULTS.selectionRatio,
    logitScale: DMN_DEFAULTS.logitScale,
    weights: DMN_DEFAULTS.weights,
    maxAgeDays: null,
    maxBytes: null,
    encryption: null,
  }),
  views: 1,
  seed: 0,
  threads: 'auto',
  worker: false,
  quantized: true,
  cache: 'auto',
  keepResults: 256,
  store: 'auto',
  namespace: 'default',
  persist: false,
  onModelMismatch: 'throw',
});

/** Longest accepted memory namespace, in UTF-16 code units. */
export const MAX_NAMESPACE_LENGTH = 200;

const OPTION_NAMES = Object.freeze([
  'model', 'classes', 'templates', 'mode', 'memory', 'views', 'seed', 'threads', 'worker',
  'quantized', 'cache', 'keepResults', 'wasmUrl', 'ortWasmPaths', 'onProgress', 'onWarning',
  'store', 'namespace', 'persist', 'onModelMismatch',
]);
const MEMORY_NAMES = Object.freeze(Object.keys(DEFAULTS.memory));
const WEIGHT_NAMES = Object.freeze(['text', 'dynamic', 'static']);

/** Formats a value for a message: JSON where possible, else its type. */
export function describeValue(value) {
  if (value === undefined) return 'undefined';
  if (typeof value === 'function') return 'a function';
  if (value instanceof URL) return `URL ${value.href}`;
  if (Array.isArray(value)) return value.length === 0 ? 'an empty list' : `a list of ${value.length}`;
  try {
    const text = JSON.stringify(value);
    if (text !== undefined) return text.length > 80 ? `${text.slice(0, 77)}...` : text;
  } catch {
    // A cycle or a BigInt: fall through to the type name.
  }
  return value?.constructor?.name ?? typeof value;
}

/** Throws `bad_option` for `option` with the value seen and what is allowed. */
export function badOption(option, value, allowed) {
  throw new DualmemError('bad_option', `${option} is ${describeValue(value)}, expected ${allowed}`,
    { option, value: typeof value === 'function' ? undefined : value, allowed });
}

function checkKeys(object, allowedNames, where) {
  for (const key of Object.keys(object)) {
    if (!allowedNames.includes(key)) {
      throw new DualmemError('bad_option',
        `${where}${key} is not an option (value ${describeValue(object[key])}); the options are ` +
        `${allowedNames.join(', ')}`, { option: `${where}${key}`, allowed: allowedNames });
    }
  }
}

function checkNumber(option, value, { min, max, integer = false, exclusiveMin = false }) {
  const ok = typeof value === 'number' && Number.isFinite(value) &&
    (!integer || Number.isInteger(value)) &&
    (exclusiveMin ? value > min : value >= min) && value <= max;
  if (!ok) {
    const kind = integer ? 'an integer' : 'a number';
    const low = exclusiveMin ? `above ${min}` : `from ${min}`;
    badOption(option, value, `${kind} ${low}${max === Infinity ? '' : ` to ${max}`}`);
  }
  return value;
}

function checkChoice(option, value, choices) {
  if (!choices.includes(value)) {
    badOption(option, value, `one of ${choices.map((choice) => JSON.stringify(choice)).join(', ')}`);
  }
  return value;
}

function checkLocation(option, value, target) {
  if (value === undefined) return undefined;
  if (value instanceof URL || (typeof value === 'string' && value.length > 0)) return value;
  return badOption(option, value, `a URL or a non-empty string naming ${target}`);
}

function checkFunction(option, value) {
  if (value !== undefined && typeof value !== 'function') badOption(option, value, 'a function');
  return value;
}

/**
 * Checks one class given as a name or as `{ name, prompts }`.
 *
 * @param {string|{name:string, prompts?:string[]}} spec
 * @param {string} option where the spec came from, for messages
 * @returns {{name:string, prompts:string[]|null}} prompts null when the
 *   templates apply
 * @throws {DualmemError} `bad_option`
 */
export function normalizeClassSpec(spec, option) {
  const object = typeof spec === 'string' ? { name: spec } : spec;
  if (object === null || typeof object !== 'object' || Array.isArray(object)) {
    badOption(option, spec, 'a class name or an object { name, prompts }');
  }
  checkKeys(object, ['name', 'prompts'], `${option}.`);
  const { name, prompts } = object;
  if (typeof name !== 'string' || name.trim().length === 0 || name.length > MAX_CLASS_NAME_LENGTH) {
    badOption(`${option}.name`, name, `a non-blank string of at most ${MAX_CLASS_NAME_LENGTH} characters`);
  }
  if (prompts === undefined) return { name, prompts: null };
  if (!Array.isArray(prompts) || prompts.length === 0 ||
      !prompts.every((prompt) => typeof prompt === 'string' && prompt.trim().length > 0)) {
    badOption(`${option}.prompts`, prompts, 'a non-empty list of non-blank strings');
  }
  return { name, prompts: [...prompts] };
}

function normalizeClasses(classes) {
  if (!Array.isArray(classes) || classes.length === 0) {
    badOption('classes', classes, 'a non-empty list of class names or { name, prompts } objects');
  }
  const specs = classes.map((spec, index) => normalizeClassSpec(spec, `classes[${index}]`));
  const seen = new Set();
  specs.forEach((spec, index) => {
    if (seen.has(spec.name)) badOption(`classes[${index}].name`, spec.name, 'a name not used twice');
    seen.add(spec.name);
  });
  return specs;
}

function normalizeMemory(memory = {}) {
  if (memory === null || typeof memory !== 'object' || Array.isArray(memory)) {
    badOption('memory', memory, `an object with any of ${MEMORY_NAMES.join(', ')}`);
  }
  checkKeys(memory, MEMORY_NAMES, 'memory.');
  const merged = { ...DEFAULTS.memory, ...memory };
  checkNumber('memory.capacityPerClass', merged.capacityPerClass, { min: 1, max: 100000, integer: true });
  checkChoice('memory.precision', merged.precision, Object.keys(PRECISIONS));
  checkNumber('memory.beta', merged.beta, { min: 0, max: 1000, exclusiveMin: true });
  checkNumber('memory.selectionRatio', merged.selectionRatio, { min: 0, max: 1, exclusiveMin: true });
  checkNumber('memory.logitScale', merged.logitScale, { min: 0, max: 1000, exclusiveMin: true });
  if (merged.maxAgeDays !== null) checkNumber('memory.maxAgeDays', merged.maxAgeDays, { min: 0, max: 100000, exclusiveMin: true });
  if (merged.maxBytes !== null) checkNumber('memory.maxBytes', merged.maxBytes, { min: 1, max: Number.MAX_SAFE_INTEGER, integer: true });
  const encryption = normalizeEncryption(merged.encryption);

  const weights = merged.weights;
  if (weights === null || typeof weights !== 'object' || Array.isArray(weights)) {
    badOption('memory.weights', weights, 'an object { text, dynamic, static }');
  }
  checkKeys(weights, WEIGHT_NAMES, 'memory.weights.');
  const fullWeights = { ...DEFAULTS.memory.weights, ...weights };
  // The text head is the fallback prediction of every mode, so it may not be off.
  checkNumber('memory.weights.text', fullWeights.text, { min: 0, max: 1000, exclusiveMin: true });
  checkNumber('memory.weights.dynamic', fullWeights.dynamic, { min: 0, max: 1000 });
  checkNumber('memory.weights.static', fullWeights.static, { min: 0, max: 1000 });
  return { ...merged, weights: fullWeights, encryption };
}

function normalizeEncryption(encryption) {
  if (encryption === null || encryption === undefined) return null;
  const allowed = "{ passphrase: string }, { key: CryptoKey | Uint8Array of 16 or 32 bytes } or { key: 'device' }";
  if (typeof encryption !== 'object' || Array.isArray(encryption)) badOption('memory.encryption', encryption, allowed);
  checkKeys(encryption, ['passphrase', 'key', 'iterations'], 'memory.encryption.');
  const { passphrase, key } = encryption;
  if ((passphrase === undefined) === (key === undefined)) badOption('memory.encryption', encryption, allowed);
  if (passphrase !== undefined && (typeof passphrase !== 'string' || passphrase.length === 0)) {
    badOption('memory.encryption.passphrase', passphrase, 'a non-empty string');
  }
  const isCryptoKey = typeof CryptoKey !== 'undefined' && key instanceof CryptoKey;
  if (key !== undefined && key !== 'device' && !isCryptoKey && !(key instanceof Uint8Array) && !(key instanceof ArrayBuffer)) {
    badOption('memory.encryption.key', key, "a CryptoKey, a Uint8Array of 16 or 32 bytes or 'device'");
  }
  if (encryption.iterations !== undefined) {
    checkNumber('memory.encryption.iterations', encryption.iterations, { min: 1, max: 1e8, integer: true });
  }
  return { ...encryption };
}

function normalizeNamespace(namespace) {
  if (typeof namespace !== 'string' || namespace.length === 0 || namespace.length > MAX_NAMESPACE_LENGTH) {
    badOption('namespace', namespace, `a non-empty string of at most ${MAX_NAMESPACE_LENGTH} characters`);
  }
  return namespace;
}

function normalizeOrtWasmPaths(value) {
  if (value === undefined || value instanceof URL || (typeof value === 'string' && value.length > 0)) {
    return value;
  }
  const isMap = value !== null && typeof value === 'object' && !Array.isArray(value) &&
    Object.values(value).every((entry) => typeof entry === 'string' || entry instanceof URL);
  if (!isMap) badOption('ortWasmPaths', value, 'a folder URL or an object of file URLs, as ort.env.wasm.wasmPaths takes');
  return value;
}

/**
 * Validates the options of createClassifier and fills in defaults.
 *
 * @param {object} options as passed by the caller
 * @returns {object} a new object with every option set
 * @throws {DualmemError} `bad_option` naming the first bad option
 */
export function normalizeOptions(options) {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    badOption('options', options, 'an object with at least `classes`');
  }
  checkKeys(options, OPTION_NAMES, '');
  const merged = { ...DEFAULTS, ...options };
  const result = {
    model: checkLocation('model', options.model, 'a CLIP model folder'),
    classes: normalizeClasses(options.classes),
    templates: resolveTemplates(merged.templates),
    mode: checkChoice('mode', merged.mode, MODES),
    memory: normalizeMemory(options.memory),
    views: checkNumber('views', merged.views, { min: 1, max: MAX_VIEWS, integer: true }),
    seed: checkNumber('seed', merged.seed, { min: 0, max: 0xffffffff, integer: true }),
    threads: merged.threads === 'auto' ? 'auto'
      : checkNumber('threads', merged.threads, { min: 1, max: 256, integer: true }),
    worker: checkChoice('worker', merged.worker, [false, true]),
    quantized: checkChoice('quantized', merged.quantized, [true, false]),
    cache: checkChoice('cache', merged.cache, ['auto', true, false]),
    keepResults: checkNumber('keepResults', merged.keepResults, { min: 0, max: 100000, integer: true }),
    wasmUrl: checkLocation('wasmUrl', options.wasmUrl, 'the dualmem core .wasm file'),
    ortWasmPaths: normalizeOrtWasmPaths(options.ortWasmPaths),
    onProgress: checkFunction('onProgress', options.onProgress),
    onWarning: checkFunction('onWarning', options.onWarning),
    store: checkChoice('store', merged.store, ['auto', 'indexeddb', 'memory']),
    namespace: normalizeNamespace(merged.namespace),
    persist: checkChoice('persist', merged.persist, [false, true]),
    onModelMismatch: checkChoice('onModelMismatch', merged.onModelMismatch, ['throw', 'clear']),
  };
  return result;
}
