// Checks the options of classifier.train before any work starts, so that a
// typo fails with `bad_option` naming the option instead of an error from
// the core after the queue has drained.

import { TRAIN_DEFAULTS } from './core.js';
import { badOption } from './options.js';
import { DualmemError } from './errors.js';

// Limits as in the core's TrainConfig (src/adapter.h).
const MAX_EPOCHS = 10000;

const RULES = {
  epochs: [(v) => Number.isInteger(v) && v >= 1 && v <= MAX_EPOCHS, `an integer from 1 to ${MAX_EPOCHS}`],
  learningRate: [(v) => Number.isFinite(v) && v > 0, 'a finite number above 0'],
  weightDecay: [(v) => Number.isFinite(v) && v >= 0, 'a finite number from 0'],
  labelSmoothing: [(v) => Number.isFinite(v) && v >= 0 && v < 1, 'a number from 0 to below 1'],
  batchSize: [(v) => Number.isInteger(v) && v >= 1, 'an integer from 1'],
  seed: [(v) => Number.isSafeInteger(v) && v >= 0, 'an integer from 0 to 2^53 - 1'],
  perClassRateScale: [(v) => Number.isFinite(v) && v >= 0, 'a finite number from 0'],
};

/**
 * Returns TRAIN_DEFAULTS with `options` applied.
 * @throws {DualmemError} `bad_option` for an unknown option or a value out of range
 */
export function normalizeTrainOptions(options = {}) {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    badOption('train options', options, 'an object');
  }
  for (const [key, value] of Object.entries(options)) {
    if (!Object.hasOwn(RULES, key)) {
      throw new DualmemError('bad_option', `train option ${key} is not an option; the options are ` +
        `${Object.keys(RULES).join(', ')}`, { option: key, allowed: Object.keys(RULES) });
    }
    const [valid, allowed] = RULES[key];
    if (value !== undefined && !valid(value)) badOption(key, value, allowed);
  }
  const defined = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
  return { ...TRAIN_DEFAULTS, ...defined };
}
