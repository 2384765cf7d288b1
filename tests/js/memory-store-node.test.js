// Stored memories under Node with fake-indexeddb: records and meta, reload,
// fingerprint checks, blocked upgrades, fallbacks, quota, retention,
// encryption, export and import, clear, and two writers at once.

import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';

import { IDBFactory } from 'fake-indexeddb';

import { loadCore } from '../../web/src/core.js';
import { createClassifier } from '../../web/src/index.js';
import { clearMemory, MemoryPersistence } from '../../web/src/memory-api.js';
import { memoryDatabaseName, openMemoryDatabase } from '../../web/src/memory-store.js';
import { DAY_MS, snapshotSlotBytes } from '../../web/src/retention.js';
import { DIM, FINGERPRINT, MemoryHarness, OTHER_FINGERPRINT } from './helpers/memory-harness.js';
import { MODEL_DIR, modelSkipReason, sampleClasses, sampleImages } from './helpers/samples.js';

// Low PBKDF2 cost, so that each passphrase test derives its key in milliseconds.
const FAST_PASSPHRASE = { passphrase: 'correct horse battery staple', iterations: 1000 };

function requestDone(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/** Reads every record of every object store of a namespace's database. */
async function readAllRecords(factory, namespace) {
  const db = await requestDone(factory.open(memoryDatabaseName(namespace)));
  const records = {};
  try {
    for (const name of db.objectStoreNames) {
      const store = db.transaction(name, 'readonly').objectStore(name);
      const [keys, values] = await Promise.all([requestDone(store.getAllKeys()), requestDone(store.getAll())]);
      records[name] = keys.map((key, i) => ({ key, value: values[i] }));
    }
  } finally {
    db.close();
  }
  return records;
}

/** Returns whether `needle` occurs in `haystack` (both byte arrays). */
function containsBytes(haystack, needle) {
  outer: for (let i = 0; i + needle.length <= haystack.length; i += 1) {
    for (let j = 0; j < needle.length; j += 1) if (haystack[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

async function rejectsWithCode(promise, code) {
  await assert.rejects(promise, (error) => {
    assert.equal(error.code, code, `expected ${code}, got ${error.code}: ${error.message}`);
    return true;
  });
}

/** Installs a Web Locks stand-in, because Node 20 lacks navigator.locks. */
function installLocks() {
  const tails = new Map();
  const locks = {
    request(name, options, work) {
      const previous = tails.get(name) ?? Promise.resolve();
      const run = previous.then(() => work());
      tails.set(name, run.catch(() => {}));
      return run;
    },
  };
  Object.defineProperty(globalThis, 'navigator', { value: { locks }, configurable: true, writable: true });
  return () => delete globalThis.navigator;
}

describe('memory store (fake-indexeddb)', () => {
  let core;
  let factory;
  const open = (options = {}) => MemoryHarness.open(core, { indexedDB: factory, ...options });

  before(async () => {
    core = await loadCore();
  });

  beforeEach(() => {
    factory = new IDBFactory();
  });

  test('update writes snapshot and meta together', async () => {
    const harness = await open();
    assert.equal(harness.loaded, false);
    const { durable } = await harness.addDynamic(0);
    await harness.addShot(1);
    harness.close();

    const records = await readAllRecords(factory, 'test');
    assert.equal(records.snapshot.length, 1);
    assert.equal(records.meta.length, 1);
    const meta = records.meta[0].value;
    assert.equal(durable, true);
    assert.equal(meta.fingerprint, FINGERPRINT);
    assert.equal(meta.sequence, 2);
    assert.deepEqual(meta.counts, { classes: 2, shots: 1, dynamic: 1 });
    assert.equal(meta.bytes, records.snapshot[0].value.payload.byteLength);
  });

  test('memories survive reopening', async () => {
    const first = await open();
    for (let i = 0; i < 5; i += 1) await first.addDynamic(i % 2, { entropy: 0.1 * i });
    await first.addShot(0);
    const saved = first.counts();
    first.close();

    const second = await open();
    assert.equal(second.loaded, true);
    assert.deepEqual(second.counts(), saved);
    assert.deepEqual(second.names, ['first', 'second']);
    second.close();
  });

  test('memory store keeps nothing across instances', async () => {
    const first = await open({ store: 'memory' });
    const { durable } = await first.addDynamic(0);
    first.close();
    const second = await open({ store: 'memory' });
    assert.equal(durable, false);
    assert.equal(second.loaded, false);
    assert.equal(second.persistence.kind, 'memory');
    second.close();
  });

  test('another model fingerprint is rejected', async () => {
    const first = await open();
    await first.addDynamic(0);
    first.close();

    await rejectsWithCode(open({ fingerprint: OTHER_FINGERPRINT }), 'memory_model_mismatch');
    const records = await readAllRecords(factory, 'test');
    assert.equal(records.meta[0].value.fingerprint, FINGERPRINT, 'a rejected open changed the stored memory');
  });

  test('onModelMismatch clear starts afresh with a warning', async () => {
    const first = await open();
    await first.addDynamic(0);
    first.close();

    const second = await open({ fingerprint: OTHER_FINGERPRINT, onModelMismatch: 'clear' });
    assert.equal(second.loaded, false);
    assert.equal(second.counts()[0].dynamic, 0);
    assert.match(second.warnings.join('\n'), /another model and was cleared/);
    second.close();
  });

  test('clearMemory removes a rejected memory', async () => {
    const first = await open();
    await first.addDynamic(0);
    first.close();

    await clearMemory({ namespace: 'test', indexedDB: factory });
    const records = await readAllRecords(factory, 'test');
    for (const [name, entries] of Object.entries(records)) assert.equal(entries.length, 0, `${name} is not empty`);
    const second = await open({ fingerprint: OTHER_FINGERPRINT });
    assert.equal(second.loaded, false);
    second.close();
  });

  test('corrupt snapshot is memory_corrupt', async () => {
    const first = await open();
    await first.addDynamic(0);
    first.close();

    // Flip one byte of the stored snapshot, which its CRC-32C catches.
    const db = await requestDone(factory.open(memoryDatabaseName('test')));
    const store = db.transaction('snapshot', 'readwrite').objectStore('snapshot');
    const record = await requestDone(store.get('current'));
    const bytes = new Uint8Array(record.payload);
    bytes[bytes.length >> 1] ^= 0xff;
    await requestDone(store.put({ ...record, payload: bytes.buffer }, 'current'));
    db.close();

    await rejectsWithCode(open(), 'memory_corrupt');
  });

  test('namespaces are separate', async () => {
    const first = await open({ namespace: 'one' });
    await first.addDynamic(0);
    first.close();
    const second = await open({ namespace: 'two' });
    assert.equal(second.loaded, false);
    second.close();
  });

  test('blocked upgrade ends in storage_blocked', async () => {
    // An older tab that ignores versionchange keeps version 1 open.
    const name = memoryDatabaseName('test');
    const older = await requestDone(factory.open(name, 1));
    const start = Date.now();
    await rejectsWithCode(openMemoryDatabase(factory, name, { version: 2, blockedTimeoutMs: 200 }), 'storage_blocked');
    const waited = Date.now() - start;
    assert.ok(waited >= 190, `expected the 200 ms timeout, waited ${waited} ms`);
    assert.ok(waited < 2000, `expected the 200 ms timeout, waited ${waited} ms`);
    older.close();
  });

  test('warnings of a start wait until the model has loaded', async () => {
    let warnedWhileLoading = null;
    const harness = await MemoryHarness.open(core, {
      indexedDB: undefined,
      whileLoading: async (loading) => {
        await new Promise((resolve) => setTimeout(resolve, 20));
        warnedWhileLoading = loading.warnings.length;
      },
    });
    assert.equal(warnedWhileLoading, 0, 'a warning came before the model had loaded');
    assert.match(harness.warnings.join('\n'), /IndexedDB is not available/);
    harness.close();
  });

  test('a blocked open during the model load is tried again afterwards', async () => {
    // An older tab that ignores versionchange keeps version 1 open until the model has loaded.
    const older = await requestDone(factory.open(memoryDatabaseName('test'), 1));
    const harness = await open({
      version: 2,
      blockedTimeoutMs: 100,
      whileLoading: async () => {
        await new Promise((resolve) => setTimeout(resolve, 250));
        older.close();
      },
    });
    assert.equal(harness.persistence.kind, 'indexeddb');
    assert.equal((await harness.addDynamic(0)).durable, true);
    harness.close();
  });

  test('a start closed before its store opens leaves no connection open', async () => {
    // A model load that fails at once closes the start before the database
    // has opened; the read that follows the open must not reopen it.
    const connections = new Set();
    const tracked = Object.create(factory);
    tracked.open = (...args) => {
      const request = factory.open(...args);
      request.addEventListener('success', () => {
        const db = request.result;
        connections.add(db);
        const close = db.close.bind(db);
        db.close = () => {
          connections.delete(db);
          close();
        };
      });
      return request;
    };
    const persistence = MemoryPersistence.begin({
      store: 'indexeddb', namespace: 'test', persist: false, onModelMismatch: 'throw',
      memory: { maxAgeDays: null, maxBytes: null, encryption: null }, indexedDB: tracked,
    }, {});
    persistence.close();
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(connections.size, 0, `${connections.size} connection(s) left open after close()`);
  });

  test("a memory of this model written during the model load survives onModelMismatch 'clear'", async () => {
    const stale = await open({ fingerprint: OTHER_FINGERPRINT });
    await stale.addShot(0);
    stale.close();
    // The start reads the other model's memory first; while its model loads,
    // another tab of this model replaces that memory with one of its own.
    let other = null;
    const harness = await open({
      onModelMismatch: 'clear',
      whileLoading: async () => {
        other = await open({ onModelMismatch: 'clear' });
        await other.addShot(0);
        await other.addShot(1);
      },
    });
    try {
      assert.equal(harness.loaded, true, `the other tab's memory was not loaded; warnings: ${harness.warnings.join('; ')}`);
      assert.deepEqual(harness.counts().map((entry) => entry.shots), [1, 1]);
    } finally {
      other.close();
      harness.close();
    }
  });

  test('versionchange closes the connection and later writes report it', async () => {
    const harness = await open();
    await harness.addDynamic(0);
    // A newer version opens; ours must step aside instead of blocking it.
    const newer = await openMemoryDatabase(factory, memoryDatabaseName('test'), { version: 2, blockedTimeoutMs: 1000 });
    const { durable } = await harness.addDynamic(0);
    assert.equal(durable, false);
    assert.match(harness.warnings.join('\n'), /upgraded by a newer version/);
    assert.equal(harness.counts()[0].dynamic, 2, 'the update must still apply in memory');
    newer.close();
    harness.close();
  });

  test('missing IndexedDB falls back to memory with a warning', async () => {
    const harness = await MemoryHarness.open(core, { indexedDB: undefined });
    const { durable } = await harness.addDynamic(0);
    assert.equal(durable, false);
    assert.equal(harness.persistence.kind, 'memory');
    assert.match(harness.warnings.join('\n'), /IndexedDB is not available/);
    harness.close();
  });

  test('IndexedDB that refuses to open falls back to memory', async () => {
    const refusing = { open: () => { throw new DOMException('denied in this context', 'SecurityError'); } };
    const harness = await MemoryHarness.open(core, { indexedDB: refusing });
    assert.equal(harness.persistence.kind, 'memory');
    assert.match(harness.warnings.join('\n'), /SecurityError/);
    harness.close();
  });

  describe('quota', () => {
    let originalPut;
    let limit;

    before(async () => {
      const { IDBObjectStore } = await import('fake-indexeddb');
      originalPut = IDBObjectStore.prototype.put;
      IDBObjectStore.prototype.put = function put(value, key) {
        if (value?.payload?.byteLength > limit) throw new DOMException('quota exceeded in test', 'QuotaExceededError');
        return originalPut.call(this, value, key);
      };
    });

    after(async () => {
      const { IDBObjectStore } = await import('fake-indexeddb');
      IDBObjectStore.prototype.put = originalPut;
    });

    test('retention frees room and the retry succeeds', async () => {
      limit = Infinity;
      const harness = await open();
      for (let i = 0; i < 4; i += 1) await harness.addDynamic(i % 2, { entropy: i });
      const stored = (await readAllRecords(factory, 'test')).meta[0].value.bytes;
      limit = stored;

      const { durable } = await harness.addDynamic(0, { entropy: 0.01 });
      assert.equal(durable, true);
      // The highest-entropy slot (3) made room for the new one.
      assert.equal(harness.counts()[1].dynamic, 1);
      assert.equal(harness.counts()[0].dynamic, 3);
      assert.equal(harness.warnings.length, 0, harness.warnings.join('\n'));
      harness.close();
    });

    test('when retention cannot help, memory carries on and the stored copy stays', async () => {
      limit = Infinity;
      const harness = await open();
      await harness.addShot(0);
      const before = await readAllRecords(factory, 'test');
      limit = 1;

      const { durable } = await harness.addShot(0);
      assert.equal(durable, false);
      assert.equal(harness.counts()[0].shots, 2, 'labelled shots must not be dropped');
      assert.match(harness.warnings.join('\n'), /quota is exhausted/);
      const afterwards = await readAllRecords(factory, 'test');
      assert.deepEqual(afterwards.meta, before.meta);
      assert.deepEqual(new Uint8Array(afterwards.snapshot[0].value.payload), new Uint8Array(before.snapshot[0].value.payload));
      const { durable: later } = await harness.addDynamic(0);
      assert.equal(later, false);
      harness.close();
    });
  });

  describe('retention', () => {
    test('expired dynamic slots are dropped on open', async () => {
      const first = await open();
      const old = Date.now() - 10 * DAY_MS;
      await first.addDynamic(0, { timestamp: old });
      await first.addDynamic(1, { timestamp: old });
      await first.addDynamic(1);
      await first.addShot(0);
      first.close();

      const second = await open({ memory: { maxAgeDays: 7 } });
      assert.deepEqual(second.counts(), [{ shots: 1, dynamic: 0 }, { shots: 0, dynamic: 1 }]);
      second.close();
      const meta = (await readAllRecords(factory, 'test')).meta[0].value;
      assert.deepEqual(meta.counts, { classes: 2, shots: 1, dynamic: 1 }, 'the trimmed memory was not written back');
    });

    test('expired dynamic slots are dropped while running', async () => {
      const harness = await open({ memory: { maxAgeDays: 1 } });
      await harness.addDynamic(0, { timestamp: Date.now() - 2 * DAY_MS });
      assert.equal(harness.counts()[0].dynamic, 0);
      harness.close();
    });

    test('over maxBytes the highest-entropy dynamic slots go first', async () => {
      const base = await open({ namespace: 'size' });
      const emptyBytes = base.memory.saveSnapshot(FINGERPRINT, { classNames: base.names }).length;
      base.close();
      const perSlot = snapshotSlotBytes(DIM, 'float32');
      const harness = await open({ memory: { maxBytes: emptyBytes + 3 * perSlot } });
      const entropies = [0.2, 0.9, 0.1, 0.8, 0.3];
      for (let i = 0; i < entropies.length; i += 1) await harness.addDynamic(i % 2, { entropy: entropies[i] });

      // The fourth slot pushes out 0.9 and the fifth 0.8, both of class 1.
      assert.deepEqual(harness.counts().map((c) => c.dynamic), [3, 0]);
      const meta = (await readAllRecords(factory, 'test')).meta[0].value;
      assert.ok(meta.bytes <= emptyBytes + 3 * perSlot, `stored ${meta.bytes} bytes, budget ${emptyBytes + 3 * perSlot}`);
      harness.close();
    });

    test('shots over maxBytes are kept with a warning', async () => {
      const harness = await open({ memory: { maxBytes: 100 } });
      await harness.addShot(0);
      await harness.addShot(1);
      assert.deepEqual(harness.counts().map((c) => c.shots), [1, 1]);
      assert.equal(harness.warnings.filter((w) => /alone take/.test(w)).length, 1, harness.warnings.join('\n'));
      harness.close();
    });
  });

  describe('encryption', () => {
    test('passphrase: nothing readable at rest, reopens with the passphrase', async () => {
      const harness = await open({ memory: { encryption: FAST_PASSPHRASE } });
      await harness.addDynamic(0);
      await harness.addShot(1);
      const plain = harness.memory.saveSnapshot(FINGERPRINT, { classNames: harness.names });
      harness.close();

      const records = await readAllRecords(factory, 'test');
      const stored = new Uint8Array(records.snapshot[0].value.payload);
      assert.equal(records.snapshot[0].value.encrypted, 'passphrase');
      assert.ok(!containsBytes(stored, new TextEncoder().encode('DMNSNAP')), 'snapshot magic visible');
      // No 16-byte window of the plaintext (a text embedding, a slot) is stored.
      for (let offset = 100; offset + 16 <= plain.length; offset += 64) {
        assert.ok(!containsBytes(stored, plain.subarray(offset, offset + 16)), `plaintext bytes at ${offset} visible`);
      }

      const reopened = await open({ memory: { encryption: FAST_PASSPHRASE } });
      assert.deepEqual(reopened.counts(), [{ shots: 0, dynamic: 1 }, { shots: 1, dynamic: 0 }]);
      reopened.close();
    });

    test('wrong or missing passphrase is rejected', async () => {
      const harness = await open({ memory: { encryption: FAST_PASSPHRASE } });
      await harness.addDynamic(0);
      harness.close();
      await rejectsWithCode(open({ memory: { encryption: { ...FAST_PASSPHRASE, passphrase: 'wrong' } } }), 'memory_key_invalid');
      await rejectsWithCode(open(), 'memory_key_required');
    });

    test('raw key and device key round-trip', async () => {
      const key = crypto.getRandomValues(new Uint8Array(32));
      const first = await open({ namespace: 'raw', memory: { encryption: { key } } });
      await first.addDynamic(0);
      first.close();
      const second = await open({ namespace: 'raw', memory: { encryption: { key } } });
      assert.equal(second.counts()[0].dynamic, 1);
      second.close();
      await rejectsWithCode(open({ namespace: 'raw', memory: { encryption: { key: new Uint8Array(32) } } }), 'memory_key_invalid');

      const device = await open({ namespace: 'device', memory: { encryption: { key: 'device' } } });
      await device.addShot(0);
      device.close();
      const records = await readAllRecords(factory, 'device');
      assert.equal(records.keys[0].value.extractable, false);
      const again = await open({ namespace: 'device', memory: { encryption: { key: 'device' } } });
      assert.equal(again.counts()[0].shots, 1);
      again.close();
    });
  });

  describe('export, import and clear', () => {
    test('plain export imports into another namespace', async () => {
      const source = await open({ namespace: 'source' });
      await source.addDynamic(0);
      await source.addShot(1);
      const file = await source.persistence.exportFile();
      source.close();

      const target = await open({ namespace: 'target' });
      assert.equal(await target.persistence.importFile(file), true);
      assert.deepEqual(target.counts(), [{ shots: 0, dynamic: 1 }, { shots: 1, dynamic: 0 }]);
      target.close();
      const reopened = await open({ namespace: 'target' });
      assert.equal(reopened.counts()[1].shots, 1);
      reopened.close();
    });

    test('encrypted export needs its passphrase', async () => {
      const source = await open();
      await source.addShot(0);
      const file = await source.persistence.exportFile(FAST_PASSPHRASE);
      assert.ok(!containsBytes(file, new TextEncoder().encode('DMNSNAP')));
      await rejectsWithCode(source.persistence.importFile(file), 'memory_key_required');
      await rejectsWithCode(source.persistence.importFile(file, { passphrase: 'wrong' }), 'memory_key_invalid');
      assert.equal(await source.persistence.importFile(file, FAST_PASSPHRASE), true);
      source.close();
    });

    test('import rejects damaged, newer and foreign files', async () => {
      const source = await open();
      await source.addShot(0);
      const file = await source.persistence.exportFile();
      const countsBefore = source.counts();

      await rejectsWithCode(source.persistence.importFile(file.subarray(0, file.length - 10)), 'memory_file_invalid');
      await rejectsWithCode(source.persistence.importFile(new Uint8Array(8)), 'memory_file_invalid');
      const newer = file.slice();
      new DataView(newer.buffer).setUint32(8, 99, true);
      await rejectsWithCode(source.persistence.importFile(newer), 'unsupported');
      const damaged = file.slice();
      damaged[damaged.length - 30] ^= 0xff;
      await rejectsWithCode(source.persistence.importFile(damaged), 'parse_error');
      const foreign = await open({ namespace: 'foreign', fingerprint: OTHER_FINGERPRINT });
      await rejectsWithCode(foreign.persistence.importFile(file), 'memory_model_mismatch');
      foreign.close();

      assert.deepEqual(source.counts(), countsBefore, 'a rejected import changed the memory');
      source.close();
    });

    test('clear removes every record of the namespace', async () => {
      const harness = await open({ memory: { encryption: FAST_PASSPHRASE } });
      await harness.addDynamic(0);
      await harness.addShot(1);
      const other = await open({ namespace: 'kept' });
      await other.addShot(0);
      other.close();

      await harness.persistence.clear();
      assert.deepEqual(harness.counts(), [{ shots: 0, dynamic: 0 }, { shots: 0, dynamic: 0 }]);
      const records = await readAllRecords(factory, 'test');
      assert.equal(records.snapshot.length, 0);
      assert.equal(records.meta.length, 0);
      // The salt of the passphrase was deleted and a new one written for later records.
      assert.ok(records.keys.every((entry) => entry.key === 'salt'));
      assert.equal((await readAllRecords(factory, 'kept')).meta.length, 1, 'another namespace was cleared');
      harness.close();
    });
  });

  describe('two writers', () => {
    let uninstall;
    before(() => {
      uninstall = installLocks();
    });
    after(() => uninstall());

    test('concurrent updates of two writers are all kept', async () => {
      const first = await open({ seed: 1 });
      const second = await open({ seed: 500 });
      const updates = [];
      for (let i = 0; i < 15; i += 1) {
        updates.push(first.addDynamic(0, { entropy: 0.01 * i }));
        updates.push(second.addDynamic(1, { entropy: 0.01 * i }));
      }
      const outcomes = await Promise.all(updates);
      assert.ok(outcomes.every((outcome) => outcome.durable));
      first.close();
      second.close();

      const reopened = await open();
      assert.deepEqual(reopened.counts().map((c) => c.dynamic), [15, 15]);
      reopened.close();
    });

    test('a writer hears of the other and reloads while idle', async () => {
      const first = await open();
      const second = await open();
      await first.addShot(0);
      // BroadcastChannel delivers asynchronously; give it a few turns.
      for (let i = 0; i < 20 && second.counts()[0].shots === 0; i += 1) {
        await new Promise((resolve) => setTimeout(resolve, 10));
        await second.idle();
      }
      assert.equal(second.counts()[0].shots, 1);
      assert.ok(second.events.some((event) => event.detail.reason === 'otherTab'));
      first.close();
      second.close();
    });
  });
});

describe('classifier with stored memories (fake-indexeddb)', { skip: modelSkipReason() ?? false }, () => {
  const settings = { classes: modelSkipReason() ? [] : sampleClasses(), templates: 'simple', model: MODEL_DIR, store: 'indexeddb', onWarning: () => {} };

  before(() => {
    globalThis.indexedDB = new IDBFactory();
  });
  after(() => {
    delete globalThis.indexedDB;
  });

  test('memories survive a new classifier and keep no file name', async () => {
    const images = sampleImages(2);
    const first = await createClassifier(settings);
    const results = [];
    for (const image of images) results.push(await first.classify(image.path));
    await first.addExamples(images[0].className, [images[1].path]);
    const saved = first.stats();
    await first.dispose();

    assert.ok(results.every((result) => result.durable === true), 'a classify result was not durable');
    assert.ok(saved.classes.some((entry) => entry.dynamic > 0), 'no dynamic slot was stored');
    const second = await createClassifier(settings);
    assert.deepEqual(second.stats().classes, saved.classes);
    assert.equal(second.stats().storage.store, 'indexeddb');
    await second.dispose();

    const records = await readAllRecords(globalThis.indexedDB, 'default');
    const stored = new Uint8Array(records.snapshot[0].value.payload);
    for (const image of images) {
      const name = image.path.split('/').pop();
      assert.ok(!containsBytes(stored, new TextEncoder().encode(name)), `file name ${name} stored`);
    }
  });

  test('a memory of another model is rejected by createClassifier', async () => {
    const db = await requestDone(globalThis.indexedDB.open(memoryDatabaseName('default')));
    const transaction = db.transaction('meta', 'readwrite');
    const meta = await requestDone(transaction.objectStore('meta').get('current'));
    await requestDone(transaction.objectStore('meta').put({ ...meta, fingerprint: OTHER_FINGERPRINT }, 'current'));
    db.close();

    await rejectsWithCode(createClassifier(settings), 'memory_model_mismatch');
    const cleared = await createClassifier({ ...settings, onModelMismatch: 'clear' });
    assert.ok(cleared.stats().classes.every((entry) => entry.dynamic === 0 && entry.static === 0));
    await cleared.dispose();
  });
});

describe('storage options', () => {
  const base = { classes: ['cat'] };
  const cases = [
    [{ store: 'disk' }, 'store'],
    [{ namespace: '' }, 'namespace'],
    [{ persist: 'yes' }, 'persist'],
    [{ onModelMismatch: 'ignore' }, 'onModelMismatch'],
    [{ memory: { maxAgeDays: 0 } }, 'memory.maxAgeDays'],
    [{ memory: { maxBytes: 1.5 } }, 'memory.maxBytes'],
    [{ memory: { encryption: {} } }, 'memory.encryption'],
    [{ memory: { encryption: { passphrase: 'a', key: 'device' } } }, 'memory.encryption'],
    [{ memory: { encryption: { passphrase: '' } } }, 'memory.encryption.passphrase'],
    [{ memory: { encryption: { key: 'secret' } } }, 'memory.encryption.key'],
    [{ memory: { encryption: { passphrase: 'a', salt: 'x' } } }, 'memory.encryption.salt'],
  ];
  for (const [options, option] of cases) {
    test(`invalid ${option} is bad_option`, async () => {
      await assert.rejects(createClassifier({ ...base, ...options }), (error) => {
        assert.equal(error.code, 'bad_option', error.message);
        assert.equal(error.option, option, error.message);
        return true;
      });
    });
  }
});

describe('worker classifier memory', { skip: modelSkipReason() ?? false }, () => {
  test('memory export and import run in the worker', async () => {
    const settings = { classes: sampleClasses(), templates: 'simple', model: MODEL_DIR, worker: true, onWarning: () => {} };
    const images = sampleImages(1);
    const source = await createClassifier(settings);
    await source.addExamples(images[0].className, [images[0].path]);
    const file = await source.memory.export();
    await source.dispose();

    const target = await createClassifier(settings);
    assert.equal(target.stats().classes.find((entry) => entry.name === images[0].className).static, 0);
    const { durable } = await target.memory.import(file);
    assert.equal(durable, false, 'a Node worker has no IndexedDB, so the import is kept in memory');
    assert.equal(target.stats().classes.find((entry) => entry.name === images[0].className).static, 1);
    await target.memory.clear();
    assert.equal(target.stats().classes.find((entry) => entry.name === images[0].className).static, 0);
    await target.dispose();
  });
});
