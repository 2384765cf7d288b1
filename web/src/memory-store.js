// Stores of a namespace's memories between sessions: one IndexedDB database
// per namespace, or a plain in-memory store with the same methods.
//
// A stored memory is two records written in one readwrite transaction: the
// snapshot (possibly encrypted) and a small meta record with the model
// fingerprint, counts and a sequence number. A transaction either commits
// both or neither, so a reader never sees a snapshot without its meta. Every
// value is built before the transaction opens: nothing inside it awaits.

import { DualmemError } from './errors.js';

/** Version of the memory database; an upgrade adds object stores. */
export const MEMORY_DB_VERSION = 1;

/** How long an open waits for other tabs to close an older connection. */
export const BLOCKED_TIMEOUT_MS = 5000;

const STORES = Object.freeze(['snapshot', 'meta', 'keys']);
const CURRENT = 'current';

/** Database name of a namespace. */
export function memoryDatabaseName(namespace) {
  return `dualmem-memory:${namespace}`;
}

/** Turns an IDBRequest into a promise. */
function requestDone(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/** Resolves when a transaction commits; rejects with its error when it aborts. */
function transactionDone(transaction) {
  return new Promise((resolve, reject) => {
    transaction.oncomplete = () => resolve();
    transaction.onabort = () => reject(transaction.error ?? new DOMException('transaction aborted', 'AbortError'));
    transaction.onerror = () => {};
  });
}

/** True for the errors that mean IndexedDB cannot be used in this context. */
export function isStorageUnavailableError(error) {
  return ['SecurityError', 'InvalidStateError', 'UnknownError', 'NotSupportedError'].includes(error?.name);
}

/**
 * Opens the database of a namespace, creating its object stores.
 *
 * @param {IDBFactory} factory usually globalThis.indexedDB
 * @param {string} name database name
 * @param {object} [options] `version` and `blockedTimeoutMs`
 * @returns {Promise<IDBDatabase>}
 * @throws {DualmemError} `storage_blocked` when another tab keeps an older
 *   version open past the timeout; a DOMException when the open fails
 */
export function openMemoryDatabase(factory, name, options = {}) {
  const version = options.version ?? MEMORY_DB_VERSION;
  const timeoutMs = options.blockedTimeoutMs ?? BLOCKED_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    let timer = null;
    let settled = false;
    const settle = (fn, value) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn(value);
    };

    const request = factory.open(name, version);
    request.onupgradeneeded = () => {
      const db = request.result;
      for (const store of STORES) if (!db.objectStoreNames.contains(store)) db.createObjectStore(store);
    };
    request.onblocked = () => {
      timer = setTimeout(() => settle(reject, new DualmemError('storage_blocked',
        `IndexedDB database ${JSON.stringify(name)} could not be upgraded to version ${version} within ` +
        `${timeoutMs} ms because another tab holds it open at an older version; close or reload the other tabs`,
        { database: name, version })), timeoutMs);
    };
    request.onsuccess = () => {
      const db = request.result;
      // A success after the timeout has no caller left, so close it.
      if (settled) db.close();
      else settle(resolve, db);
    };
    request.onerror = () => settle(reject, request.error);
  });
}

/**
 * The IndexedDB store of one namespace. The connection closes itself when a
 * newer version of the database is requested elsewhere (`versionchange`),
 * and later calls reopen it.
 */
export class IndexedDbStore {
  kind = 'indexeddb';
  #factory;
  #name;
  #options;
  #db = null;

  /**
   * Opens the store, so that an unusable IndexedDB shows at once.
   *
   * @param {object} options `namespace`, `indexedDB` (default
   *   globalThis.indexedDB), `version`, `blockedTimeoutMs`
   * @returns {Promise<IndexedDbStore>}
   * @throws {DualmemError} `storage_blocked`; a DOMException when IndexedDB
   *   refuses the open (SecurityError, InvalidStateError in private modes)
   */
  static async open(options) {
    const store = new IndexedDbStore(options);
    await store.#connection();
    return store;
  }

  constructor(options) {
    this.#factory = options.indexedDB ?? globalThis.indexedDB;
    this.#name = memoryDatabaseName(options.namespace);
    this.#options = options;
  }

  get databaseName() {
    return this.#name;
  }

  async #connection() {
    if (this.#db) return this.#db;
    let db;
    try {
      db = await openMemoryDatabase(this.#factory, this.#name, this.#options);
    } catch (error) {
      if (error?.name === 'VersionError') {
        throw new DualmemError('storage_blocked',
          `IndexedDB database ${JSON.stringify(this.#name)} was upgraded by a newer version of this page ` +
          'in another tab; reload this tab', { cause: error, database: this.#name });
      }
      throw error;
    }
    db.onversionchange = () => {
      // Another tab wants to upgrade: let it, and reopen on the next call.
      db.close();
      if (this.#db === db) this.#db = null;
    };
    db.onclose = () => {
      if (this.#db === db) this.#db = null;
    };
    this.#db = db;
    return db;
  }

  async #transaction(stores, mode) {
    const db = await this.#connection();
    try {
      return db.transaction(stores, mode);
    } catch (error) {
      // The connection closed between the open and this call: reopen once.
      if (error?.name !== 'InvalidStateError') throw error;
      this.#db = null;
      return (await this.#connection()).transaction(stores, mode);
    }
  }

  /**
   * Reads the stored memory in one transaction.
   *
   * @returns {Promise<{meta: object, record: object}|null>} null when
   *   nothing is stored
   */
  async read() {
    const transaction = await this.#transaction(['snapshot', 'meta'], 'readonly');
    const [record, meta] = await Promise.all([
      requestDone(transaction.objectStore('snapshot').get(CURRENT)),
      requestDone(transaction.objectStore('meta').get(CURRENT)),
    ]);
    if (record === undefined && meta === undefined) return null;
    return { record: record ?? null, meta: meta ?? null };
  }

  /** Reads the meta record only; null when nothing is stored. */
  async readMeta() {
    const transaction = await this.#transaction(['meta'], 'readonly');
    return (await requestDone(transaction.objectStore('meta').get(CURRENT))) ?? null;
  }

  /**
   * Replaces the stored memory: snapshot record and meta in one transaction.
   * Resolves once the transaction has committed.
   *
   * NOTE: every update writes the whole snapshot, even for one new slot. At
   * 1000 classes × 50 float32 slots that is 106 MB, and a classify that
   * inserts took 0.91 s in Chromium. Per-class records are not built yet.
   *
   * @param {object} record plain values and ArrayBuffers, built beforehand
   * @param {object} meta
   * @throws {DOMException} QuotaExceededError and other aborts; the
   *   previous record and meta then stay as they were
   */
  async write(record, meta) {
    const transaction = await this.#transaction(['snapshot', 'meta'], 'readwrite');
    const done = transactionDone(transaction);
    try {
      transaction.objectStore('snapshot').put(record, CURRENT);
      transaction.objectStore('meta').put(meta, CURRENT);
    } catch (error) {
      // A put that throws (DataCloneError, a quota check) must not let the
      // other put commit alone.
      done.catch(() => {});
      transaction.abort();
      throw error;
    }
    await done;
  }

  /** Deletes every record of the namespace, stored keys included. */
  async clear() {
    const transaction = await this.#transaction([...STORES], 'readwrite');
    const done = transactionDone(transaction);
    for (const store of STORES) transaction.objectStore(store).clear();
    await done;
  }

  /** Reads a stored value of the key store (a CryptoKey or a salt). */
  async readKey(name) {
    const transaction = await this.#transaction(['keys'], 'readonly');
    return (await requestDone(transaction.objectStore('keys').get(name))) ?? null;
  }

  /** Stores a value in the key store. */
  async writeKey(name, value) {
    const transaction = await this.#transaction(['keys'], 'readwrite');
    const done = transactionDone(transaction);
    transaction.objectStore('keys').put(value, name);
    await done;
  }

  close() {
    this.#db?.close();
    this.#db = null;
  }
}

/** A store that keeps the records in this object only; nothing survives a reload. */
export class MemoryStore {
  kind = 'memory';
  #records = new Map();

  async read() {
    if (!this.#records.has('meta')) return null;
    return { record: this.#records.get('snapshot'), meta: this.#records.get('meta') };
  }

  async readMeta() {
    return this.#records.get('meta') ?? null;
  }

  async write(record, meta) {
    this.#records.set('snapshot', record);
    this.#records.set('meta', meta);
  }

  async clear() {
    this.#records.clear();
  }

  async readKey(name) {
    return this.#records.get(`key:${name}`) ?? null;
  }

  async writeKey(name, value) {
    this.#records.set(`key:${name}`, value);
  }

  close() {}
}

/**
 * Opens the store of `options.store`, falling back to a MemoryStore when
 * IndexedDB is missing or refuses to open.
 *
 * @param {object} options `store` ('indexeddb' or 'memory'), `namespace`,
 *   `indexedDB`, `version`, `blockedTimeoutMs`
 * @param {(message: string, error?: Error) => void} onStorageWarning called
 *   once when falling back
 * @returns {Promise<IndexedDbStore|MemoryStore>}
 * @throws {DualmemError} `storage_blocked`, which falling back would hide
 *   from a user whose other tab is the cause
 */
export async function openStore(options, onStorageWarning) {
  if (options.store === 'memory') return new MemoryStore();
  const factory = options.indexedDB ?? globalThis.indexedDB;
  if (!factory) {
    onStorageWarning('IndexedDB is not available here, so memories are kept in memory only and are lost on reload');
    return new MemoryStore();
  }
  try {
    return await IndexedDbStore.open({ ...options, indexedDB: factory });
  } catch (error) {
    if (error instanceof DualmemError) throw error;
    onStorageWarning(`IndexedDB could not be opened (${error?.name}: ${error?.message}), ` +
      'so memories are kept in memory only and are lost on reload', error);
    return new MemoryStore();
  }
}
