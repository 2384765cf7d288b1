// Runs a stream of embedded test images through the DMN step and counts
// what `dualmem eval` reports: top-1 of the fused prediction, of a
// label-free adaptive fusion of the same heads, and how many wrong
// pseudo-labels entered the dynamic memory.

import { DMN_DEFAULTS, DualMemory } from '../core.js';
import { seededRandom } from '../seeded-random.js';

export { seededRandom };

/** Returns 0..count-1 shuffled (Fisher-Yates) with numbers from `random`. */
export function shuffledIndices(count, random) {
  const items = Array.from({ length: count }, (_, i) => i);
  for (let i = count - 1; i > 0; i -= 1) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

/**
 * Draws `perClass` image indices of every class, without replacement.
 * @returns {number[][]} indices per class
 */
export function drawShots(labels, numClasses, perClass, random) {
  const byClass = Array.from({ length: numClasses }, () => []);
  for (const i of shuffledIndices(labels.length, random)) byClass[labels[i]].push(i);
  return byClass.map((indices) => indices.slice(0, perClass));
}

/** Top-1 of the text head alone on view 0, the CLIP zero-shot baseline. */
export function zeroShotCorrect(embeddings, numViews, labels, text, dim) {
  const numClasses = text.length;
  let correct = 0;
  for (let i = 0; i < labels.length; i += 1) {
    const offset = i * numViews * dim;
    let best = -Infinity, bestClass = -1;
    for (let c = 0; c < numClasses; c += 1) {
      let dot = 0;
      for (let d = 0; d < dim; d += 1) dot += embeddings[offset + d] * text[c][d];
      if (dot > best) { best = dot; bestClass = c; }
    }
    if (bestClass === labels[i]) correct += 1;
  }
  return correct;
}

function entropy(probs) {
  let sum = 0;
  for (const p of probs) if (p > 0) sum -= p * Math.log(p);
  return sum;
}

function argMax(values) {
  let best = 0;
  for (let i = 1; i < values.length; i += 1) if (values[i] > values[best]) best = i;
  return best;
}

/**
 * Label-free adaptive fusion: each head's fixed weight is scaled by its
 * confidence on this image, 1 - H(p) / log C, so that a head that is unsure
 * of this image counts less than one that is sure.
 */
export function adaptiveLabel(step, weights) {
  const numClasses = step.text.length;
  const maxEntropy = Math.log(numClasses);
  const heads = [[step.text, weights.text], [step.dynamic, weights.dynamic]];
  if (step.static) heads.push([step.static, weights.static]);
  const fused = new Float64Array(numClasses);
  for (const [probs, weight] of heads) {
    const w = weight * Math.max(0, 1 - entropy(probs) / maxEntropy);
    for (let c = 0; c < numClasses; c += 1) fused[c] += w * probs[c];
  }
  return argMax(fused);
}

/**
 * Runs one stream.
 *
 * @param {object} core the WebAssembly module
 * @param {object} run `text` (class embeddings), `config` (DualMemory
 *   config), `embeddings` + `numViews` + `labels` of the stream's set,
 *   `order` (image indices), `shots` ({embeddings, indices per class}, 1
 *   view each) or null, `train` (options of DualMemory.train) or null,
 *   `record` (a function (step, label) called after every step) or null
 * @returns {{correct:number, adaptiveCorrect:number, count:number,
 *   inserted:number, wrongInserted:number, losses:number[]|null}}
 */
export function runStream(core, run) {
  const dim = run.text[0].length;
  const memory = new DualMemory(core, dim, run.config);
  try {
    for (const embedding of run.text) memory.addClass(embedding);
    if (run.shots) {
      run.shots.indices.forEach((indices, classIndex) => {
        for (const i of indices) {
          memory.addShot(classIndex, run.shots.embeddings.subarray(i * dim, (i + 1) * dim), 1);
        }
      });
    }
    const losses = run.train ? memory.train(run.train) : null;
    const weights = { ...DMN_DEFAULTS.weights, ...(run.config.weights ?? {}) };
    const stride = run.numViews * dim;
    const result = { correct: 0, adaptiveCorrect: 0, count: 0, inserted: 0, wrongInserted: 0, losses };
    run.order.forEach((index, time) => {
      const views = run.embeddings.subarray(index * stride, (index + 1) * stride);
      const step = memory.step(views, run.numViews, { timestamp: time });
      const label = run.labels[index];
      result.count += 1;
      if (step.label === label) result.correct += 1;
      if (adaptiveLabel(step, weights) === label) result.adaptiveCorrect += 1;
      if (step.inserted) {
        result.inserted += 1;
        if (step.pseudoLabel !== label) result.wrongInserted += 1;
      }
      run.record?.(step, label);
    });
    return result;
  } finally {
    memory.dispose();
  }
}
