// Persistence of a classifier's memories: loading them on start, writing
// each update before the call that made it resolves, retention, encryption
// at rest, one writer at a time across tabs, and classifier.memory
// (export, import, clear).
//
// Every memory update runs under a Web Lock named after the namespace: the
// lock holder first reloads the stored memory if another tab wrote since,
// then applies the update, serializes the snapshot and writes it in one
// transaction. Updates of several tabs are thereby applied one after
// another to the latest stored memory, so none is lost. Other tabs hear of
// each write on a BroadcastChannel and reload while idle.

import { DualmemError } from './errors.js';
import { additionalData, decryptBytes, deriveKey, encryptBytes, generateDeviceKey, importRawKey, randomBytes, SALT_BYTES } from './memory-crypto.js';
import { readMemoryFile, writeMemoryFile } from './memory-file.js';
import { isStorageUnavailableError, MemoryStore, openStore } from './memory-store.js';
import { dropExpired, serializeWithinBudget } from './retention.js';

/** Format of the meta record; a newer one is rejected as `unsupported`. */
export const MEMORY_META_FORMAT = 1;

function isQuotaError(error) {
  return error?.name === 'QuotaExceededError' ||
    (error?.name === 'AbortError' && error?.message?.toLowerCase().includes('quota'));
}

function randomId() {
  return Array.from(randomBytes(8), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Runs `work` holding the namespace's Web Lock, or directly where Web Locks are missing. */
function withLock(name, work) {
  const locks = globalThis.navigator?.locks;
  if (!locks?.request) return work();
  return locks.request(name, { mode: 'exclusive' }, work);
}

async function toBytes(file) {
  if (file instanceof Uint8Array) return file;
  if (file instanceof ArrayBuffer) return new Uint8Array(file);
  if (typeof Blob !== 'undefined' && file instanceof Blob) return new Uint8Array(await file.arrayBuffer());
  throw new DualmemError('invalid_argument',
    `file is ${file?.constructor?.name ?? typeof file}, expected a Blob, File, ArrayBuffer or Uint8Array`);
}

/**
 * The stored side of one classifier's memories.
 *
 * The classifier provides `hooks`. `save()` returns the snapshot bytes of
 * its memory. `load(bytes)` replaces its memory and classes from a snapshot
 * and throws the core's error for a bad one. `reset()` empties the
 * memories, and `memory()` returns the DualMemory. `enqueue(fn)` runs fn
 * after the classifier's pending calls. `warn(message, error)` emits
 * `storagewarning`, and `emit(type, detail)` any other event.
 */
export class MemoryPersistence {
  #options;
  #fingerprint;
  #hooks;
  #store;
  #key = null;
  #keyKind = null;
  #writeId = null;
  #sequence = 0;
  #lastStoredBytes = null;
  #failed = false;
  #budgetWarned = false;
  #channel = null;
  #onPageHide = null;
  #opening = null;
  #reading = null;
  #closed = false;

  /**
   * Opens the store and loads the stored memory into the classifier.
   *
   * @param {object} options normalized: `store`, `namespace`, `persist`,
   *   `onModelMismatch`, `memory` (maxAgeDays, maxBytes, encryption), and
   *   for tests `indexedDB` and `blockedTimeoutMs`
   * @param {string} fingerprint the model's 64 hex digits
   * @param {object} hooks see the class comment
   * @returns {Promise<{persistence: MemoryPersistence, loaded: boolean}>}
   * @throws {DualmemError} `memory_model_mismatch`, `memory_corrupt`,
   *   `memory_key_required`, `memory_key_invalid`, `storage_blocked`,
   *   `unsupported`
   */
  static async open(options, fingerprint, hooks) {
    const persistence = MemoryPersistence.begin(options, hooks);
    const loaded = await persistence.finish(fingerprint);
    return { persistence, loaded };
  }

  /**
   * Starts opening the store and reading the stored memory before the
   * model's fingerprint is known, so that both overlap loading the model.
   * Nothing is written and no warning is given until finish. A start that
   * never reaches finish thus leaves no trace but the read, and close()
   * releases its store.
   *
   * @param {object} options as for open
   * @param {object} hooks see the class comment
   * @returns {MemoryPersistence} call finish(fingerprint) or close() next
   */
  static begin(options, hooks) {
    const persistence = new MemoryPersistence(options, null, hooks);
    persistence.#readAhead();
    return persistence;
  }

  constructor(options, fingerprint, hooks) {
    this.#options = options;
    this.#fingerprint = fingerprint;
    this.#hooks = hooks;
  }

  get #lockName() {
    return `dualmem-memory:${this.#options.namespace}`;
  }

  /** 'indexeddb' while updates are written to IndexedDB, else 'memory'. */
  get kind() {
    return this.#failed ? 'memory' : this.#store.kind;
  }

  #readAhead() {
    const warnings = [];
    this.#opening = openStore(this.#options, (message, error) => warnings.push([message, error]))
      .then((store) => {
        this.#store = store;
        if (this.#closed) store.close();
        return { store, warnings };
      });
    // A store closed before its open finished stays closed: reading it would
    // reopen the connection, and nothing would ever close that one.
    this.#reading = this.#opening.then(({ store }) => {
      if (this.#closed) throw new DualmemError('disposed', 'the memory store was closed before it was read');
      return store.read();
    });
    // Both are awaited in finish; a start that never gets there drops them.
    this.#opening.catch(() => {});
    this.#reading.catch(() => {});
  }

  /**
   * Loads the memory read by begin, checked against the model's fingerprint.
   * Warnings held back since begin are given first. The steps run in the
   * order open() always ran them, so a failure names the same cause. On a
   * failure the store is closed and nothing of the stored memory is loaded.
   *
   * @param {string} fingerprint the model's 64 hex digits
   * @returns {Promise<boolean>} whether a stored memory was loaded
   * @throws {DualmemError} as open
   */
  async finish(fingerprint) {
    this.#fingerprint = fingerprint;
    try {
      return await this.#open();
    } catch (error) {
      this.close();
      throw error;
    }
  }

  async #open() {
    let warnings;
    try {
      ({ warnings } = await this.#opening);
    } catch (error) {
      if (error?.code !== 'storage_blocked') throw error;
      // Another tab's old connection may have closed while the model loaded,
      // and open() gave it the whole timeout from here on: one more try.
      this.#readAhead();
      ({ warnings } = await this.#opening);
    }
    for (const [message, error] of warnings) this.#hooks.warn(message, error);
    if (this.#options.persist && this.#store.kind === 'indexeddb') await this.#requestPersistence();
    await this.#resolveKey();

    let stored = await this.#reading;
    // The read ahead may predate a write of this model's memory by another
    // tab during the model load; read again before rejecting or clearing.
    if (stored?.meta && stored.meta.fingerprint !== this.#fingerprint) stored = await this.#store.read();
    const loaded = stored !== null && await this.#loadStored(stored);
    if (dropExpired(this.#hooks.memory(), this.#options.memory.maxAgeDays) > 0 && loaded) {
      await this.#writeLocked();
    }
    this.#listen();
    return loaded;
  }

  async #requestPersistence() {
    const storage = globalThis.navigator?.storage;
    const granted = storage?.persist ? await storage.persist().catch(() => false) : false;
    if (!granted) {
      this.#hooks.warn('the browser did not grant persistent storage (navigator.storage.persist), ' +
        'so it may evict the memories under storage pressure');
    }
  }

  async #resolveKey() {
    const encryption = this.#options.memory.encryption;
    if (!encryption) return;
    if (encryption.passphrase !== undefined) {
      let salt = await this.#store.readKey('salt');
      if (salt === null) {
        salt = randomBytes(SALT_BYTES);
        await this.#store.writeKey('salt', salt);
      }
      this.#key = await deriveKey(encryption.passphrase, salt, encryption.iterations);
      this.#keyKind = 'passphrase';
    } else if (encryption.key === 'device') {
      // A non-extractable key kept in the namespace's own database: scripts
      // of this origin can use it but never read its bytes.
      let key = await this.#store.readKey('device');
      if (key === null) {
        key = await generateDeviceKey();
        await this.#store.writeKey('device', key);
      }
      this.#key = key;
      this.#keyKind = 'device';
    } else {
      const key = encryption.key;
      this.#key = key instanceof Uint8Array || key instanceof ArrayBuffer ? await importRawKey(key) : key;
      this.#keyKind = 'key';
    }
  }

  /** Checks a stored record against this model and loads it; returns whether it did. */
  async #loadStored({ meta, record }) {
    const namespace = this.#options.namespace;
    if (meta === null || record === null) {
      throw new DualmemError('memory_corrupt',
        `the stored memory of namespace ${JSON.stringify(namespace)} lacks its ${meta === null ? 'meta' : 'snapshot'} ` +
        'record; clear it with memory.clear() or clearMemory()', { namespace });
    }
    if (meta.format > MEMORY_META_FORMAT) {
      throw new DualmemError('unsupported',
        `the stored memory has meta format ${meta.format}, written by a newer dualmem; this one reads ${MEMORY_META_FORMAT}`);
    }
    if (meta.fingerprint !== this.#fingerprint) {
      if (this.#options.onModelMismatch !== 'clear') {
        throw new DualmemError('memory_model_mismatch',
          `the stored memory of namespace ${JSON.stringify(namespace)} was written for model ` +
          `${String(meta.fingerprint).slice(0, 16)}…, but this classifier runs ${this.#fingerprint.slice(0, 16)}…; ` +
          "pass onModelMismatch: 'clear' or call clearMemory({ namespace }) to start afresh, or use another namespace",
          { namespace, stored: meta.fingerprint, expected: this.#fingerprint });
      }
      this.#hooks.warn(`the stored memory of namespace ${JSON.stringify(namespace)} belonged to another model and was cleared`);
      await this.#store.clear();
      await this.#resolveKey();
      return false;
    }
    await this.#applyStored(meta, record);
    return true;
  }

  async #applyStored(meta, record) {
    const bytes = await this.#decodeRecord(record);
    try {
      this.#hooks.load(bytes);
    } catch (error) {
      throw new DualmemError('memory_corrupt',
        `the stored memory of namespace ${JSON.stringify(this.#options.namespace)} does not load (${error.message}); ` +
        'clear it with memory.clear() or clearMemory()', { cause: error, namespace: this.#options.namespace });
    }
    this.#writeId = meta.writeId;
    this.#sequence = meta.sequence;
    this.#lastStoredBytes = bytes.length;
  }

  async #decodeRecord(record) {
    if (!record.encrypted) return new Uint8Array(record.payload);
    if (this.#key === null) {
      throw new DualmemError('memory_key_required',
        `the stored memory of namespace ${JSON.stringify(this.#options.namespace)} is encrypted; ` +
        `pass memory.encryption (${record.encrypted === 'passphrase' ? '{ passphrase }' : '{ key }'})`);
    }
    return decryptBytes(this.#key, record.iv, record.payload,
      additionalData(this.#fingerprint, this.#options.namespace));
  }

  async #encodeRecord(bytes) {
    if (this.#key === null) return { payload: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length), encrypted: null };
    const { iv, ciphertext } = await encryptBytes(this.#key, bytes, additionalData(this.#fingerprint, this.#options.namespace));
    return { payload: ciphertext, iv, encrypted: this.#keyKind };
  }

  #listen() {
    if (this.#store.kind !== 'indexeddb') return;
    if (typeof BroadcastChannel !== 'undefined') {
      this.#channel = new BroadcastChannel(this.#lockName);
      this.#channel.onmessage = (event) => {
        if (event.data?.writeId !== this.#writeId) this.#hooks.enqueue(() => this.#syncFromOtherTab());
      };
    }
    // Every update is written before its call resolves, so nothing waits for
    // pagehide; closing the connection there lets other tabs upgrade at once.
    if (typeof addEventListener === 'function' && typeof window !== 'undefined') {
      this.#onPageHide = () => this.#store.close();
      addEventListener('pagehide', this.#onPageHide);
    }
  }

  async #syncFromOtherTab() {
    if (this.#failed) return;
    try {
      // Under the lock, so that a reload cannot land while an update of this
      // tab is being written and leave the memory behind the stored copy.
      const reloaded = await withLock(this.#lockName, () => this.#reloadIfStale());
      if (reloaded) this.#hooks.emit('memoryupdate', { reason: 'otherTab', memory: 'all', className: null });
    } catch (error) {
      this.#fail('the memory written by another tab could not be loaded', error);
    }
  }

  /** Loads the stored memory when another tab wrote after this one; returns whether it did. */
  async #reloadIfStale() {
    const meta = await this.#store.readMeta();
    const storedId = meta?.writeId ?? null;
    if (storedId === this.#writeId) return false;
    if (meta === null) {
      // Cleared elsewhere.
      this.#hooks.reset();
      this.#writeId = null;
      this.#sequence = 0;
      return true;
    }
    const stored = await this.#store.read();
    if (stored?.meta?.fingerprint !== this.#fingerprint) return false;
    await this.#applyStored(stored.meta, stored.record);
    return true;
  }

  #fail(message, error) {
    if (this.#failed) return;
    this.#failed = true;
    this.#hooks.warn(`${message} (${error?.name ?? 'Error'}: ${error?.message ?? error}); ` +
      'memories are kept in memory only from now on and the stored copy stays as it was', error);
  }

  /**
   * Applies a memory update and writes the result.
   *
   * @param {() => {value: *, changed: boolean}} mutate synchronous; runs
   *   after any newer memory of another tab was loaded
   * @returns {Promise<{value: *, durable: boolean}>} durable is true when
   *   the memory after this update is stored
   */
  async update(mutate) {
    if (this.kind !== 'indexeddb') {
      const { value } = mutate();
      return { value, durable: false };
    }
    return withLock(this.#lockName, async () => {
      try {
        await this.#reloadIfStale();
      } catch (error) {
        this.#fail('the stored memory could not be read before an update', error);
      }
      const { value, changed } = mutate();
      if (!changed || this.#failed) return { value, durable: !this.#failed };
      return { value, durable: await this.#write() };
    });
  }

  async #writeLocked() {
    if (this.kind !== 'indexeddb') return false;
    return withLock(this.#lockName, () => this.#write());
  }

  async #write(budget = this.#options.memory.maxBytes ?? Infinity, retried = false) {
    const memory = this.#hooks.memory();
    dropExpired(memory, this.#options.memory.maxAgeDays);
    const { bytes, overBudget } = serializeWithinBudget(memory, () => this.#hooks.save(), budget);
    if (overBudget && !this.#budgetWarned) {
      this.#budgetWarned = true;
      this.#hooks.warn(`labelled shots and corrections alone take ${bytes.length} bytes, above the budget of ` +
        `${budget} bytes; they are kept, since only dynamic slots are dropped`);
    }

    // Everything is built before the transaction opens.
    const record = await this.#encodeRecord(bytes);
    const writeId = randomId();
    const meta = {
      format: MEMORY_META_FORMAT,
      fingerprint: this.#fingerprint,
      writeId,
      sequence: this.#sequence + 1,
      updatedAt: Date.now(),
      bytes: bytes.length,
      encrypted: record.encrypted,
      counts: this.#counts(memory),
    };
    try {
      await this.#store.write(record, meta);
    } catch (error) {
      if (isQuotaError(error) && !retried) {
        // Retention against the size that fit last time, then one retry.
        const fitted = Math.min(budget, this.#lastStoredBytes ?? budget);
        return this.#write(fitted < bytes.length ? fitted : Math.floor(bytes.length / 2), true);
      }
      const reason = isQuotaError(error) ? 'the storage quota is exhausted'
        : isStorageUnavailableError(error) ? 'IndexedDB became unavailable' : 'writing the memory failed';
      this.#fail(reason, error);
      return false;
    }
    this.#writeId = writeId;
    this.#sequence = meta.sequence;
    this.#lastStoredBytes = bytes.length;
    this.#channel?.postMessage({ writeId });
    return true;
  }

  #counts(memory) {
    let shots = 0;
    let dynamic = 0;
    for (let c = 0; c < memory.numClasses; c += 1) {
      shots += memory.shotCount(c);
      dynamic += memory.dynamicCount(c);
    }
    return { classes: memory.numClasses, shots, dynamic };
  }

  /** Writes the current memory, e.g. after classes were added on start. */
  async save() {
    return this.#writeLocked();
  }

  /** Builds an export file of the current memory. */
  async exportFile(encrypt) {
    return writeMemoryFile(this.#hooks.save(), this.#fingerprint, encrypt);
  }

  /** Replaces the memory with an export file's and stores it. */
  async importFile(file, decrypt) {
    const snapshot = await readMemoryFile(await toBytes(file), this.#fingerprint, decrypt);
    const run = async () => {
      this.#hooks.load(snapshot);
      return this.#failed || this.#store.kind !== 'indexeddb' ? false : this.#write();
    };
    return this.#store.kind === 'indexeddb' ? withLock(this.#lockName, run) : run();
  }

  /** Deletes every stored record of the namespace and empties the memories. */
  async clear() {
    const run = async () => {
      await this.#store.clear();
      this.#hooks.reset();
      this.#writeId = null;
      this.#sequence = 0;
      this.#lastStoredBytes = null;
      this.#channel?.postMessage({ writeId: null });
      await this.#resolveKey();
    };
    return this.#store.kind === 'indexeddb' ? withLock(this.#lockName, run) : run();
  }

  /** Storage state, for stats(). */
  info() {
    return { store: this.kind, namespace: this.#options.namespace, sequence: this.#sequence, encrypted: this.#keyKind };
  }

  close() {
    this.#closed = true;
    this.#channel?.close();
    this.#channel = null;
    if (this.#onPageHide) removeEventListener('pagehide', this.#onPageHide);
    this.#store?.close();
  }
}

/**
 * Deletes every stored record of a namespace without loading a model, for a
 * memory that createClassifier rejects (another model's, or corrupt).
 *
 * @param {{namespace?: string, indexedDB?: IDBFactory}} [options]
 * @returns {Promise<void>}
 * @throws {DualmemError} `storage_blocked`; a DOMException when IndexedDB
 *   refuses to open
 */
export async function clearMemory(options = {}) {
  const namespace = options.namespace ?? 'default';
  const factory = options.indexedDB ?? globalThis.indexedDB;
  if (!factory) return;
  const store = await openStore({ store: 'indexeddb', namespace, indexedDB: factory }, () => {});
  try {
    await withLock(`dualmem-memory:${namespace}`, () => store.clear());
  } finally {
    store.close();
  }
}

/** classifier.memory: export, import and clear of the stored memories. */
export class MemoryApi {
  #run;

  /** @param {(operation: (p: MemoryPersistence) => Promise<*>) => Promise<*>} run queues an operation */
  constructor(run) {
    this.#run = run;
  }

  /**
   * Returns the memories as a versioned file: a header and the snapshot
   * (embeddings, class names and slot metadata; never images or file names).
   *
   * @param {{encrypt?: {passphrase: string}|{key: CryptoKey|Uint8Array}}} [options]
   * @returns {Promise<Blob>}
   */
  export(options = {}) {
    return this.#run(async (persistence) => new Blob([await persistence.exportFile(options.encrypt)],
      { type: 'application/octet-stream' }));
  }

  /**
   * Replaces the memories, classes included, with those of an export file.
   *
   * @param {Blob|ArrayBuffer|Uint8Array} file
   * @param {{passphrase?: string, key?: CryptoKey|Uint8Array}} [options] for encrypted files
   * @returns {Promise<{durable: boolean}>}
   * @throws {DualmemError} `memory_file_invalid`, `unsupported`,
   *   `memory_model_mismatch`, `memory_key_required`, `memory_key_invalid`,
   *   and the core's `parse_error` for a damaged snapshot
   */
  import(file, options) {
    return this.#run(async (persistence) => ({ durable: await persistence.importFile(file, options) }));
  }

  /**
   * Deletes every stored record of the namespace and empties the memories;
   * the classes stay.
   *
   * @returns {Promise<void>}
   */
  clear() {
    return this.#run((persistence) => persistence.clear());
  }
}

export { MemoryStore };
