// Few-shot training through the WebAssembly core under Node: the loss curve,
// the time for 10 classes x 16 shots at dim 512, and typed errors that leave
// the network unchanged.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { DualMemory, loadCore } from '../../web/src/core.js';
import { DualmemError } from '../../web/src/errors.js';

// Seeded Gaussian samples from an LCG and Box-Muller. The tests need spread,
// not statistical quality.
function makeRandom(seed) {
  let state = seed >>> 0;
  const uniform = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return (state + 0.5) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
}

// Classes that differ in the first `signal` dimensions, with noise in all.
function makeProblem(dim, classes, signal, seed) {
  const gaussian = makeRandom(seed);
  const means = [];
  for (let c = 0; c < classes; c++) {
    const mean = new Float32Array(dim);
    for (let i = 0; i < signal; i++) mean[i] = gaussian();
    means.push(mean);
  }
  const sample = (c, noise) => {
    const x = new Float32Array(dim);
    for (let i = 0; i < dim; i++) x[i] = means[c][i] / Math.sqrt(signal) + noise * gaussian();
    return x;
  };
  return { sample };
}

async function makeNetwork({ dim = 512, classes = 10, shots = 16, seed = 1 } = {}) {
  const problem = makeProblem(dim, classes, 16, seed);
  const network = new DualMemory(await loadCore(), dim);
  for (let c = 0; c < classes; c++) network.addClass(problem.sample(c, 0.08));
  for (let s = 0; s < shots; s++) {
    for (let c = 0; c < classes; c++) network.addShot(c, problem.sample(c, 0.05));
  }
  return { network, problem };
}

test('train returns one loss per epoch and lowers the loss', async () => {
  const { network } = await makeNetwork({ dim: 64, classes: 5, shots: 4 });
  assert.equal(network.trained, false);
  const losses = network.train({ epochs: 7, seed: 3 });
  assert.equal(losses.length, 7);
  for (const loss of losses) assert.ok(Number.isFinite(loss), `loss ${loss}`);
  assert.ok(losses.at(-1) < losses[0], `loss ${losses[0]} -> ${losses.at(-1)}`);
  assert.equal(network.trained, true);
  network.resetAdapter();
  assert.equal(network.trained, false);
  network.dispose();
});

test('10 classes x 16 shots at dim 512 train 20 epochs in seconds', async () => {
  const { network } = await makeNetwork();
  const start = performance.now();
  const losses = network.train({ epochs: 20 });
  const seconds = (performance.now() - start) / 1000;
  console.log(`# 10 classes x 16 shots, dim 512, 20 epochs: ${seconds.toFixed(2)} s ` +
    `(SIMD build), loss ${losses[0].toFixed(3)} -> ${losses.at(-1).toFixed(3)}`);
  assert.equal(losses.length, 20);
  // A generous bound, because the test machine may be shared.
  assert.ok(seconds < 20, `training took ${seconds} s`);
  network.dispose();
});

test('bad options raise invalid_argument and keep the adapter', async () => {
  const { network, problem } = await makeNetwork({ dim: 32, classes: 3, shots: 2 });
  network.train({ epochs: 2 });
  const query = problem.sample(1, 0.05);
  const before = network.step(query, 1, { update: false });
  const bad = [{ epochs: 0 }, { epochs: -1 }, { learningRate: NaN }, { learningRate: -1 },
    { learningRate: Infinity }, { weightDecay: -0.1 }, { labelSmoothing: 1 }, { batchSize: 0 },
    { seed: -1 }, { seed: 0.5 }, { perClassRateScale: -1 }];
  for (const options of bad) {
    assert.throws(() => network.train(options), (error) =>
      error instanceof DualmemError && error.code === 'invalid_argument',
    JSON.stringify(options));
    assert.equal(network.trained, true, JSON.stringify(options));
  }
  const after = network.step(query, 1, { update: false });
  assert.deepEqual(after.fused, before.fused);
  network.dispose();
});

test('training without shots raises invalid_argument', async () => {
  const network = new DualMemory(await loadCore(), 8);
  network.addClass([1, 0, 0, 0, 0, 0, 0, 0]);
  network.addClass([0, 1, 0, 0, 0, 0, 0, 0]);
  assert.throws(() => network.train({ epochs: 3 }), (error) =>
    error instanceof DualmemError && error.code === 'invalid_argument' &&
    /no class has shots/.test(error.message));
  assert.equal(network.trained, false);
  network.dispose();
});
