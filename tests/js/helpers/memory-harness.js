// A small stand-in for the classifier around MemoryPersistence: a
// DualMemory of two classes with 16-dimensional embeddings and the hooks
// that the classifier provides, so that storage tests run without a model.
// Used by the Node tests and, through the test page, by the browser tests.

import { DualMemory } from '../../../web/src/core.js';
import { MemoryPersistence } from '../../../web/src/memory-api.js';

export const DIM = 16;
export const FINGERPRINT = 'a1'.repeat(32);
export const OTHER_FINGERPRINT = 'b2'.repeat(32);

/** Deterministic pseudo-random unit vector of DIM floats. */
export function unitVector(seed) {
  let state = (seed * 2654435761 + 12345) >>> 0;
  const values = new Float32Array(DIM);
  let norm = 0;
  for (let i = 0; i < DIM; i += 1) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    values[i] = state / 2 ** 32 - 0.5;
    norm += values[i] * values[i];
  }
  return values.map((value) => value / Math.sqrt(norm));
}

export class MemoryHarness {
  warnings = [];
  events = [];
  names = ['first', 'second'];
  #queue = Promise.resolve();
  #seed = 1;

  /**
   * @param {object} core module from loadCore()
   * @param {object} [options] `fingerprint`, `capacity`, `precision` and any
   *   option of MemoryPersistence.open (`store`, `namespace`, `memory`,
   *   `onModelMismatch`, `indexedDB`, `blockedTimeoutMs`, `version`), and
   *   `whileLoading`, an async function run between MemoryPersistence.begin
   *   and finish, where a classifier loads its model
   */
  static async open(core, options = {}) {
    const harness = new MemoryHarness(core, options);
    const persistence = MemoryPersistence.begin({
      store: options.store ?? 'indexeddb',
      namespace: options.namespace ?? 'test',
      persist: options.persist ?? false,
      onModelMismatch: options.onModelMismatch ?? 'throw',
      memory: { maxAgeDays: null, maxBytes: null, encryption: null, ...(options.memory ?? {}) },
      indexedDB: options.indexedDB,
      blockedTimeoutMs: options.blockedTimeoutMs,
      version: options.version,
    }, harness.#hooks());
    await options.whileLoading?.(harness);
    const loaded = await persistence.finish(harness.fingerprint);
    harness.persistence = persistence;
    harness.loaded = loaded;
    return harness;
  }

  constructor(core, options) {
    this.fingerprint = options.fingerprint ?? FINGERPRINT;
    this.memory = new DualMemory(core, DIM, { capacity: options.capacity ?? 64, precision: options.precision });
    this.memory.addClass(unitVector(1000));
    this.memory.addClass(unitVector(2000));
    this.#seed = options.seed ?? 1;
  }

  #hooks() {
    return {
      save: () => this.memory.saveSnapshot(this.fingerprint, { classNames: this.names }),
      load: (bytes) => {
        this.names = this.memory.loadSnapshot(bytes, { expectedFingerprint: this.fingerprint }).classNames;
      },
      reset: () => {
        this.memory.resetDynamic();
        for (let i = 0; i < this.memory.numClasses; i += 1) this.memory.clearShots(i);
      },
      memory: () => this.memory,
      enqueue: (operation) => {
        this.#queue = this.#queue.then(operation).catch(() => {});
      },
      warn: (message) => this.warnings.push(message),
      emit: (type, detail) => this.events.push({ type, detail }),
    };
  }

  /** Waits for reloads that other writers triggered. */
  idle() {
    return this.#queue;
  }

  /** Stores one dynamic slot; resolves to { durable }. */
  addDynamic(classIndex, { entropy = 0.5, timestamp = Date.now() } = {}) {
    const view = unitVector(this.#seed++);
    return this.persistence.update(() => {
      this.memory.restoreDynamic(classIndex, view, entropy, timestamp);
      return { value: null, changed: true };
    });
  }

  /** Stores one labelled shot of one view. */
  addShot(classIndex) {
    const view = unitVector(this.#seed++);
    return this.persistence.update(() => {
      this.memory.addShot(classIndex, view, 1);
      return { value: null, changed: true };
    });
  }

  counts() {
    const classes = [];
    for (let c = 0; c < this.memory.numClasses; c += 1) {
      classes.push({ shots: this.memory.shotCount(c), dynamic: this.memory.dynamicCount(c) });
    }
    return classes;
  }

  close() {
    this.persistence?.close();
    this.memory.dispose();
  }
}
