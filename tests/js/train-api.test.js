// classifier.train on the embedded model with sample shots: the loss curve
// has one value per epoch and goes down, bad options fail with bad_option
// before any training, and training without examples fails clearly.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { DualmemError, createClassifier } from '../../web/src/index.js';
import { normalizeTrainOptions } from '../../web/src/train-options.js';
import { TRAIN_DEFAULTS } from '../../web/src/core.js';
import { MODEL_DIR, modelSkipReason, sampleClasses, sampleImages } from './helpers/samples.js';

const skip = modelSkipReason() ?? false;

async function rejectsWithCode(promise, code, pattern) {
  await assert.rejects(promise, (error) => {
    assert.ok(error instanceof DualmemError, `expected a DualmemError, got ${error?.name}: ${error?.message}`);
    assert.equal(error.code, code, error.message);
    if (pattern) assert.match(error.message, pattern);
    return true;
  });
}

describe('train options', () => {
  test('missing options take TRAIN_DEFAULTS', () => {
    assert.deepEqual(normalizeTrainOptions({ epochs: 5 }), { ...TRAIN_DEFAULTS, epochs: 5 });
  });

  const BAD = [
    [{ epochs: 0 }, /epochs is 0, expected an integer from 1 to 10000/],
    [{ epochs: 2.5 }, /epochs is 2.5/],
    [{ learningRate: -1 }, /learningRate is -1, expected a finite number above 0/],
    [{ learningRate: 'fast' }, /learningRate is "fast"/],
    [{ labelSmoothing: 1 }, /labelSmoothing is 1/],
    [{ batchSize: 0 }, /batchSize is 0/],
    [{ seed: -3 }, /seed is -3/],
    [{ epoch: 5 }, /train option epoch is not an option/],
  ];
  for (const [options, pattern] of BAD) {
    test(`${JSON.stringify(options)} is a bad_option`, () => {
      assert.throws(() => normalizeTrainOptions(options), (error) => {
        assert.equal(error.code, 'bad_option', error.message);
        assert.match(error.message, pattern);
        return true;
      });
    });
  }
});

describe('classifier.train on the embedded model', { skip }, () => {
  let classifier;
  before(async () => {
    classifier = await createClassifier({ model: MODEL_DIR, classes: sampleClasses(), templates: 'simple',
      onWarning: () => {} });
  });
  after(async () => {
    await classifier?.dispose();
  });

  test('training without examples fails with no_examples', async () => {
    await rejectsWithCode(classifier.train({ epochs: 3 }), 'no_examples', /addExamples/);
  });

  test('returns one loss per epoch and the loss goes down', async () => {
    for (const { className, path } of sampleImages(4)) await classifier.addExamples(className, path);
    const epochs = 15;
    const losses = await classifier.train({ epochs, learningRate: 0.01 });
    assert.equal(losses.length, epochs, `got ${losses.length} losses, expected ${epochs}`);
    for (const loss of losses) assert.ok(Number.isFinite(loss) && loss > 0, `loss ${loss}`);
    assert.ok(losses.at(-1) < losses[0],
      `last loss ${losses.at(-1)} is not below the first ${losses[0]}`);
    // The trained classifier still classifies, and held-out samples mostly right.
    let correct = 0;
    const heldOut = sampleImages(2, 10);
    for (const { className, path } of heldOut) {
      if ((await classifier.classify(path)).label === className) correct += 1;
    }
    assert.ok(correct >= heldOut.length * 0.6, `${correct} of ${heldOut.length} right after training`);
  });

  test('bad options fail with bad_option and leave the classifier usable', async () => {
    await rejectsWithCode(classifier.train({ epochs: -1 }), 'bad_option', /epochs is -1/);
    await rejectsWithCode(classifier.train({ rate: 0.1 }), 'bad_option', /rate is not an option/);
    const losses = await classifier.train({ epochs: 2 });
    assert.equal(losses.length, 2);
  });

  test('views: 4 uses the core views and still classifies', async () => {
    const viewed = await createClassifier({ model: MODEL_DIR, classes: sampleClasses(), templates: 'simple',
      views: 4, onWarning: () => {} });
    try {
      const [{ path }] = sampleImages(1, 12);
      const first = await viewed.classify(path);
      const second = await viewed.classify(path);
      assert.ok(viewed.classes.includes(first.label));
      assert.equal(second.label, first.label);
    } finally {
      await viewed.dispose();
    }
  });
});
