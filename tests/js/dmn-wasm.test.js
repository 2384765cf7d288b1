// The WebAssembly DMN core under Node: golden traces through the bindings
// (SIMD and scalar builds), typed errors with unchanged memory, and SIMD
// instructions present in the built module.

import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';

import { DualMemory, loadCore } from '../../web/src/core.js';
import { DualmemError } from '../../web/src/errors.js';
import { compareReplay, replayTrace } from '../../web/src/replay.js';

const fixtures = new URL('../fixtures/dmn/', import.meta.url);
const GOLDENS = ['zeroshot_1view', 'views8_shots2', 'capacity3_replacement', 'c100_d512'];
const TOLERANCE = 1e-4;

function readJson(name) {
  return JSON.parse(readFileSync(new URL(name, fixtures), 'utf8'));
}

for (const variant of ['simd', 'scalar']) {
  describe(`golden traces, ${variant} build`, () => {
    for (const name of GOLDENS) {
      test(`${name} matches within ${TOLERANCE}`, async () => {
        const core = await loadCore({ variant });
        const actual = replayTrace(core, readJson(`${name}.trace.json`));
        const { maxDifference, firstMismatch } = compareReplay(
          actual, readJson(`${name}.expected.json`), TOLERANCE);
        assert.equal(firstMismatch, null,
          `first mismatch: ${JSON.stringify(firstMismatch)}, max difference ${maxDifference}`);
        assert.ok(maxDifference <= TOLERANCE, `max difference ${maxDifference} > ${TOLERANCE}`);
      });
    }
  });
}

test('int8 and float16 memories keep the golden labels', async () => {
  const core = await loadCore();
  const trace = readJson('c100_d512.trace.json');
  const expected = readJson('c100_d512.expected.json');
  for (const precision of ['float16', 'int8']) {
    const actual = replayTrace(core, trace, { precision });
    const agree = actual.results.filter((r, i) => r.label === expected.results[i].label).length;
    // Quantized slots move cosines by about 1e-3 (int8) or 1e-4 (float16), so
    // a label may flip only where the two best fused scores nearly tie.
    assert.ok(agree >= expected.results.length - 2,
      `${precision}: ${agree} of ${expected.results.length} labels agree with float32`);
  }
});

function unitVector(dim, seed) {
  const v = new Float32Array(dim);
  let state = seed;
  for (let i = 0; i < dim; i++) {
    state = (state * 1103515245 + 12345) % 2147483648;
    v[i] = state / 2147483648 - 0.5;
  }
  return v;
}

describe('DualMemory errors', () => {
  test('wrong embedding length is invalid_argument and adds no class', async () => {
    const memory = new DualMemory(await loadCore(), 8);
    memory.addClass(unitVector(8, 1));
    assert.throws(() => memory.addClass(unitVector(7, 2)), (error) => {
      assert.ok(error instanceof DualmemError);
      assert.equal(error.code, 'invalid_argument');
      assert.match(error.message, /7/);
      assert.match(error.message, /8/);
      return true;
    });
    assert.equal(memory.numClasses, 1);
    memory.dispose();
  });

  test('non-finite view is rejected and memory stays empty', async () => {
    const memory = new DualMemory(await loadCore(), 4);
    memory.addClass(unitVector(4, 3));
    const bad = unitVector(4, 4);
    bad[2] = Number.NaN;
    assert.throws(() => memory.step(bad), { code: 'invalid_argument' });
    assert.equal(memory.dynamicCount(0), 0);
    memory.dispose();
  });

  test('zero-length embedding is rejected', async () => {
    const memory = new DualMemory(await loadCore(), 4);
    assert.throws(() => memory.addClass(new Float32Array(4)), { code: 'invalid_argument' });
    assert.equal(memory.numClasses, 0);
    memory.dispose();
  });

  test('unknown class index is not_found', async () => {
    const memory = new DualMemory(await loadCore(), 4);
    memory.addClass(unitVector(4, 5));
    assert.throws(() => memory.addShot(3, unitVector(4, 6)), { code: 'not_found' });
    assert.throws(() => memory.removeClass(-1), { code: 'not_found' });
    assert.equal(memory.shotCount(0), 0);
    memory.dispose();
  });

  test('capacity 0 and dimension 0 are rejected at creation', async () => {
    const core = await loadCore();
    assert.throws(() => new DualMemory(core, 4, { capacity: 0 }), /capacity/);
    assert.throws(() => new DualMemory(core, 0), /dim/);
    assert.throws(() => new DualMemory(core, 4, { precision: 'int4' }), /precision/);
  });

  test('step with no views or a view count not matching the data fails', async () => {
    const memory = new DualMemory(await loadCore(), 4);
    memory.addClass(unitVector(4, 7));
    assert.throws(() => memory.step(new Float32Array(0), 0), { code: 'invalid_argument' });
    assert.throws(() => memory.step(unitVector(4, 8), 2), { code: 'invalid_argument' });
    memory.dispose();
  });

  test('streaming pass rejects a wrong query length', async () => {
    const memory = new DualMemory(await loadCore(), 4);
    memory.addClass(unitVector(4, 9));
    assert.throws(() => memory.benchmarkStreamingPass(unitVector(3, 10)), (error) => {
      assert.ok(error instanceof DualmemError);
      assert.equal(error.code, 'invalid_argument');
      assert.match(error.message, /3/);
      assert.match(error.message, /4/);
      return true;
    });
    memory.benchmarkStreamingPass(unitVector(4, 11));
    assert.equal(memory.numClasses, 1);
    memory.dispose();
  });

  test('malformed trace names the field', async () => {
    const core = await loadCore();
    const trace = readJson('zeroshot_1view.trace.json');
    trace.stream[3].views[0] = trace.stream[3].views[0].slice(1);
    assert.throws(() => replayTrace(core, trace), /stream\[3\]\.views\[0\] has 63 values, expected 64/);
    assert.throws(() => replayTrace(core, { ...trace, format: 'x' }), /format/);
  });
});

test('classes added and removed at run time shift indices', async () => {
  const memory = new DualMemory(await loadCore(), 16);
  const a = unitVector(16, 11);
  const b = unitVector(16, 12);
  const c = unitVector(16, 13);
  memory.addClass(a);
  memory.addClass(b);
  memory.addClass(c);
  assert.equal(memory.step(c).label, 2);
  memory.removeClass(1);
  assert.equal(memory.numClasses, 2);
  assert.equal(memory.step(c).label, 1);
  memory.resetDynamic();
  assert.equal(memory.dynamicCount(0) + memory.dynamicCount(1), 0);
  memory.dispose();
});

test('frozen step leaves the dynamic memory untouched', async () => {
  const memory = new DualMemory(await loadCore(), 16);
  memory.addClass(unitVector(16, 21));
  memory.addClass(unitVector(16, 22));
  memory.step(unitVector(16, 23), 1, { update: false });
  assert.equal(memory.dynamicCount(0) + memory.dynamicCount(1), 0);
  memory.step(unitVector(16, 23));
  assert.equal(memory.dynamicCount(0) + memory.dynamicCount(1), 1);
  memory.dispose();
});

describe('built modules', () => {
  const wasmDir = new URL('../../web/wasm/', import.meta.url);

  function countSimdInstructions(file) {
    const text = execFileSync('wasm-dis', [new URL(file, wasmDir).pathname],
      { maxBuffer: 256 * 1024 * 1024 }).toString();
    return (text.match(/\b(?:v128|[if](?:8|16|32|64)x\d+)\.[a-z_0-9]+/g) ?? []).length;
  }

  test('SIMD build contains SIMD128 instructions', async () => {
    const core = await loadCore({ variant: 'simd' });
    assert.equal(core.builtWithSimd(), true);
    const count = countSimdInstructions('dualmem_core_simd.wasm');
    assert.ok(count > 100, `found ${count} SIMD instructions, expected more than 100`);
  });

  test('scalar build contains none', async () => {
    const core = await loadCore({ variant: 'scalar' });
    assert.equal(core.builtWithSimd(), false);
    assert.equal(countSimdInstructions('dualmem_core_scalar.wasm'), 0);
  });
});

describe('dualmem replay command', () => {
  const cli = new URL('../../web/bin/dualmem.js', import.meta.url).pathname;

  test('prints the expected document for a golden trace', () => {
    const trace = new URL('zeroshot_1view.trace.json', fixtures).pathname;
    const output = execFileSync(process.execPath, [cli, 'replay', trace], { maxBuffer: 64 * 1024 * 1024 });
    const { firstMismatch } = compareReplay(JSON.parse(output.toString()),
      readJson('zeroshot_1view.expected.json'), TOLERANCE);
    assert.equal(firstMismatch, null, JSON.stringify(firstMismatch));
  });

  test('exits 2 with the field name for a malformed trace', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'dualmem-replay-')), 'bad.json');
    writeFileSync(path, JSON.stringify({ format: 'dmn-trace/1', config: {} }));
    const result = spawnSync(process.execPath, [cli, 'replay', path]);
    assert.equal(result.status, 2);
    assert.match(result.stderr.toString(), /trace: config\.weights is missing, expected an object/);
  });
});
