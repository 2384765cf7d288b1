// Replays a `dmn-trace/1` trace through the WebAssembly core and returns the
// `dmn-expected/1` document: per stream item the text, confident, static,
// dynamic and fused probabilities, the label and the dynamic slot counts.

import { DualMemory } from './core.js';
import { DualmemError } from './errors.js';

function fail(field, message) {
  throw new DualmemError('invalid_argument', `trace: ${field} ${message}`, { field });
}

function describe(value) {
  if (value === undefined) return 'missing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of ${value.length}`;
  return typeof value === 'string' ? JSON.stringify(value) : `${typeof value} ${value}`;
}

function requireNumber(value, field) {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    fail(field, `is ${describe(value)}, expected a finite number`);
  }
  return value;
}

function requireVector(value, field, dim) {
  if (!Array.isArray(value)) fail(field, `is ${describe(value)}, expected an array of ${dim} numbers`);
  if (value.length !== dim) fail(field, `has ${value.length} values, expected ${dim}`);
  for (let i = 0; i < dim; i++) requireNumber(value[i], `${field}[${i}]`);
  return value;
}

function requireViews(item, field, dim) {
  if (item === null || typeof item !== 'object') fail(field, `is ${describe(item)}, expected an object`);
  const views = item.views;
  if (!Array.isArray(views) || views.length === 0) {
    fail(`${field}.views`, `is ${describe(views)}, expected a non-empty array of views`);
  }
  const flat = new Float32Array(views.length * dim);
  views.forEach((view, v) => flat.set(requireVector(view, `${field}.views[${v}]`, dim), v * dim));
  return { flat, count: views.length };
}

/**
 * Checks the structure of a parsed trace and returns its parts as typed arrays.
 *
 * @throws {DualmemError} `invalid_argument` naming the field, the value and
 *   what was expected
 */
export function validateTrace(trace) {
  if (trace === null || typeof trace !== 'object' || Array.isArray(trace)) {
    fail('document', `is ${describe(trace)}, expected an object`);
  }
  if (trace.format !== 'dmn-trace/1') fail('format', `is ${describe(trace.format)}, expected "dmn-trace/1"`);
  const config = trace.config;
  if (config === null || typeof config !== 'object') fail('config', `is ${describe(config)}, expected an object`);
  const weights = config.weights;
  if (weights === null || typeof weights !== 'object') {
    fail('config.weights', `is ${describe(weights)}, expected an object with text, dynamic and static`);
  }
  const capacity = requireNumber(config.capacity, 'config.capacity');
  if (!Number.isInteger(capacity)) fail('config.capacity', `is ${capacity}, expected an integer`);

  const texts = trace.text_embeddings;
  if (!Array.isArray(texts) || texts.length === 0) {
    fail('text_embeddings', `is ${describe(texts)}, expected a non-empty array of rows`);
  }
  if (!Array.isArray(texts[0]) || texts[0].length === 0) {
    fail('text_embeddings[0]', `is ${describe(texts[0])}, expected a non-empty array of numbers`);
  }
  const dim = texts[0].length;
  texts.forEach((row, c) => requireVector(row, `text_embeddings[${c}]`, dim));

  const shots = trace.shots ?? [];
  if (!Array.isArray(shots)) fail('shots', `is ${describe(shots)}, expected an array`);
  const parsedShots = shots.map((shot, i) => {
    const label = shot?.label;
    if (!Number.isInteger(label) || label < 0 || label >= texts.length) {
      fail(`shots[${i}].label`, `is ${describe(label)}, expected an integer in [0, ${texts.length})`);
    }
    return { label, ...requireViews(shot, `shots[${i}]`, dim) };
  });

  if (!Array.isArray(trace.stream)) fail('stream', `is ${describe(trace.stream)}, expected an array`);
  const stream = trace.stream.map((item, i) => requireViews(item, `stream[${i}]`, dim));

  return {
    dim,
    config: {
      logitScale: requireNumber(config.logit_scale, 'config.logit_scale'),
      beta: requireNumber(config.beta, 'config.beta'),
      capacity,
      selectionRatio: requireNumber(config.selection_ratio, 'config.selection_ratio'),
      weights: {
        text: requireNumber(weights.text, 'config.weights.text'),
        dynamic: requireNumber(weights.dynamic, 'config.weights.dynamic'),
        static: requireNumber(weights.static, 'config.weights.static'),
      },
    },
    texts,
    shots: parsedShots,
    stream,
  };
}

/**
 * Replays a parsed trace and returns the `dmn-expected/1` document.
 *
 * @param {object} core module from `loadCore()`
 * @param {object} trace parsed `dmn-trace/1` JSON
 * @param {object} [options] `precision` of the memory (default "float32")
 * @throws {DualmemError} for a malformed trace or a value the core rejects
 */
export function replayTrace(core, trace, options = {}) {
  const parsed = validateTrace(trace);
  const memory = new DualMemory(core, parsed.dim, {
    ...parsed.config,
    precision: options.precision ?? 'float32',
  });
  try {
    for (const text of parsed.texts) memory.addClass(text);
    for (const shot of parsed.shots) memory.addShot(shot.label, shot.flat, shot.count);

    const results = parsed.stream.map((item, index) => {
      // The item's index is its timestamp, as in the native replay tool.
      const step = memory.step(item.flat, item.count, { timestamp: index });
      const counts = [];
      for (let c = 0; c < memory.numClasses; c++) counts.push(memory.dynamicCount(c));
      return {
        text: Array.from(step.text),
        confident: Array.from(step.confident),
        static: step.static ? Array.from(step.static) : null,
        dynamic: Array.from(step.dynamic),
        fused: Array.from(step.fused),
        label: step.label,
        memory_counts: counts,
      };
    });
    return { format: 'dmn-expected/1', results };
  } finally {
    memory.dispose();
  }
}

/**
 * Compares a replay with an expected document. Returns the largest absolute
 * probability difference and the first mismatch beyond `tolerance`, if any.
 */
export function compareReplay(actual, expected, tolerance = 1e-4) {
  let maxDifference = 0;
  let firstMismatch = null;
  const keys = ['text', 'confident', 'static', 'dynamic', 'fused'];
  expected.results.forEach((want, i) => {
    const got = actual.results[i];
    if (!got) {
      firstMismatch ??= { index: i, field: 'results', detail: 'missing' };
      return;
    }
    for (const key of keys) {
      if (want[key] === null || got[key] === null) {
        if (want[key] !== got[key]) firstMismatch ??= { index: i, field: key, detail: 'null mismatch' };
        continue;
      }
      want[key].forEach((value, c) => {
        const difference = Math.abs(value - got[key][c]);
        maxDifference = Math.max(maxDifference, difference);
        if (difference > tolerance) {
          firstMismatch ??= { index: i, field: `${key}[${c}]`, detail: `expected ${value}, got ${got[key][c]}` };
        }
      });
    }
    if (want.label !== got.label) {
      firstMismatch ??= { index: i, field: 'label', detail: `expected ${want.label}, got ${got.label}` };
    }
    if (JSON.stringify(want.memory_counts) !== JSON.stringify(got.memory_counts)) {
      firstMismatch ??= { index: i, field: 'memory_counts', detail: 'counts differ' };
    }
  });
  return { maxDifference, firstMismatch };
}
