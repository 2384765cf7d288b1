// The main entry of the dualmem package.

import { Classifier } from './classifier.js';
import { normalizeOptions } from './options.js';
import { WorkerClassifier } from './worker-client.js';

export { DualmemError } from './errors.js';
export { CLIP_IMAGENET_TEMPLATES, SIMPLE_TEMPLATES } from './templates.js';
export { DEFAULTS, MODES } from './options.js';
export { clearModelCache } from './model-cache.js';
export { clearMemory } from './memory-api.js';

/**
 * Creates an image classifier: a CLIP model with dual memories over the
 * given classes. Every option is checked before anything is downloaded.
 *
 * @param {object} options see index.d.ts and the README for each option and its default
 * @returns {Promise<Classifier|WorkerClassifier>} an EventTarget with classify,
 *   addExamples, correct, addClass, removeClass, stats and dispose
 * @throws {DualmemError} `bad_option` for an invalid option;
 *   `storage_unavailable` for cache: true without Cache Storage;
 *   `model_not_found`, `model_not_clip`, `wasm_unavailable` while loading;
 *   `worker_unavailable` when worker.js fails to start
 */
export async function createClassifier(options) {
  const normalized = normalizeOptions(options);
  if (normalized.worker) return WorkerClassifier.create(normalized);
  return Classifier.create(normalized);
}
