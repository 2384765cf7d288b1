// Memory snapshots through the WebAssembly bindings: exact round trips in
// every precision, typed errors for bad bytes, and a live memory that a
// failed load leaves unchanged.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { DualMemory, loadCore } from '../../web/src/core.js';
import { DualmemError } from '../../web/src/errors.js';

const DIM = 8;
const FINGERPRINT = 'ab'.repeat(32);
const OTHER_FINGERPRINT = 'cd'.repeat(32);
const NAMES = ['cat', 'dog', 'Übung 猫'];

// Deterministic values in [-0.5, 0.5) from a linear congruential generator.
function vector(count, seed) {
  const values = new Float32Array(count);
  let state = seed;
  for (let i = 0; i < count; i += 1) {
    state = (state * 1103515245 + 12345) % 2147483648;
    values[i] = state / 2147483648 - 0.5;
  }
  return values;
}

// A memory with shots, a correction and dynamic slots, some of them
// replaced (capacity 2, 12 steps over 3 classes).
function buildMemory(core, precision) {
  const memory = new DualMemory(core, DIM, { precision, capacity: 2, logitScale: 20 });
  for (let c = 0; c < NAMES.length; c += 1) memory.addClass(vector(DIM, 100 + c));
  memory.addShot(0, vector(2 * DIM, 200), 2);
  memory.addCorrection(2, vector(DIM, 300));
  for (let i = 0; i < 12; i += 1) memory.step(vector(2 * DIM, 400 + i), 2, { timestamp: 1000 * i });
  return memory;
}

function stepAll(memory, count) {
  const results = [];
  for (let i = 0; i < count; i += 1) {
    results.push(memory.step(vector(2 * DIM, 900 + i), 2, { timestamp: 50000 + i }));
  }
  return results;
}

// Returns the DualmemError that `action` throws.
function errorOf(action) {
  try {
    action();
  } catch (error) {
    assert.ok(error instanceof DualmemError, `expected a DualmemError, got ${error}`);
    return error;
  }
  assert.fail('expected an error');
}

describe('snapshot round trip', () => {
  for (const precision of ['float32', 'float16', 'int8']) {
    test(`${precision}: save, load and save give identical bytes and steps`, async () => {
      const core = await loadCore();
      const original = buildMemory(core, precision);
      const bytes = original.saveSnapshot(FINGERPRINT, { classNames: NAMES });
      const { memory, classNames, fingerprint } = DualMemory.fromSnapshot(core, bytes,
        { expectedFingerprint: FINGERPRINT });

      assert.deepEqual(classNames, NAMES);
      assert.equal(fingerprint, FINGERPRINT);
      assert.equal(memory.precision, precision);
      assert.equal(memory.dim, DIM);
      assert.deepEqual(memory.saveSnapshot(FINGERPRINT, { classNames }), bytes);
      assert.equal(memory.shotCount(2), 1);
      assert.deepEqual(stepAll(memory, 6), stepAll(original, 6));
      original.dispose();
      memory.dispose();
    });
  }

  test('a snapshot from the SIMD build loads into the scalar build unchanged', async () => {
    const simd = buildMemory(await loadCore({ variant: 'simd' }), 'int8');
    const bytes = simd.saveSnapshot(FINGERPRINT);
    const { memory, classNames } = DualMemory.fromSnapshot(await loadCore({ variant: 'scalar' }),
      bytes);
    assert.deepEqual(classNames, ['', '', '']);
    assert.deepEqual(memory.saveSnapshot(new Uint8Array(32).fill(0xab)), bytes);
    simd.dispose();
    memory.dispose();
  });
});

describe('snapshot errors', () => {
  test('corrupt bytes are parse_error with an offset, and the memory is unchanged', async () => {
    const core = await loadCore();
    const memory = buildMemory(core, 'float32');
    const before = memory.saveSnapshot(FINGERPRINT);
    const corrupt = before.slice();
    corrupt[corrupt.length >> 1] ^= 0xff;

    const error = errorOf(() => memory.loadSnapshot(corrupt));
    assert.equal(error.code, 'parse_error');
    assert.equal(error.field, 'checksum');
    assert.equal(error.offset, before.length - 4);
    assert.deepEqual(memory.saveSnapshot(FINGERPRINT), before);
    memory.dispose();
  });

  test('truncated bytes are parse_error', async () => {
    const core = await loadCore();
    const memory = buildMemory(core, 'float16');
    const bytes = memory.saveSnapshot(FINGERPRINT);
    for (const size of [0, 7, 50, bytes.length - 1]) {
      const error = errorOf(() => DualMemory.fromSnapshot(core, bytes.subarray(0, size)));
      assert.equal(error.code, 'parse_error', `size ${size}: ${error.message}`);
    }
    memory.dispose();
  });

  test('another model fingerprint is failed_precondition naming both', async () => {
    const core = await loadCore();
    const memory = buildMemory(core, 'int8');
    const bytes = memory.saveSnapshot(FINGERPRINT);
    const error = errorOf(() => memory.loadSnapshot(bytes, { expectedFingerprint: OTHER_FINGERPRINT }));
    assert.equal(error.code, 'failed_precondition');
    assert.equal(error.offset, 20);
    assert.match(error.message, new RegExp(FINGERPRINT));
    assert.match(error.message, new RegExp(OTHER_FINGERPRINT));
    memory.dispose();
  });

  test('a newer format version is unsupported', async () => {
    const core = await loadCore();
    const memory = buildMemory(core, 'float32');
    const bytes = memory.saveSnapshot(FINGERPRINT);
    new DataView(bytes.buffer).setUint32(8, 2, true);
    const error = errorOf(() => memory.loadSnapshot(bytes));
    assert.equal(error.code, 'unsupported');
    assert.match(error.message, /version 2/);
    memory.dispose();
  });

  test('malformed fingerprints and names are invalid_argument', async () => {
    const core = await loadCore();
    const memory = buildMemory(core, 'float32');
    assert.equal(errorOf(() => memory.saveSnapshot('xyz')).code, 'invalid_argument');
    assert.equal(errorOf(() => memory.saveSnapshot(new Uint8Array(16))).code, 'invalid_argument');
    assert.equal(errorOf(() => memory.saveSnapshot(FINGERPRINT, { classNames: ['one'] })).code,
      'invalid_argument');
    assert.equal(errorOf(() => memory.loadSnapshot([1, 2, 3])).code, 'invalid_argument');
    memory.dispose();
  });
});
