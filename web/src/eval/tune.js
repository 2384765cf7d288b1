// The grid search that chose DMN_DEFAULTS, on the validation sets only (the
// held-out training images and their shifted variants), never on the test
// sets. The fusion weights do not change what enters the dynamic memory
// (that follows the text head), so one stream per (logit scale, beta) and
// set records the three heads' probabilities and every weight pair is
// scored from the record.

import { drawShots, runStream, seededRandom, shuffledIndices, zeroShotCorrect } from './streams.js';

export const GRID = Object.freeze({
  logitScale: ['model', 25, 50, 100],
  beta: [1, 3, 5.5, 10],
  dynamic: [0.1, 0.3, 0.5, 1, 2, 4],
  static: [0.5, 1, 2, 4, 8, 16],
  selectionRatio: [0.125, 0.25, 0.5, 1],
});

// A candidate may lose at most this much (points of top-1) against zero-shot
// on any validation set: the margin that the accuracy target allows on the
// test sets.
const MAX_LOSS = 0.3;

// Scores closer than this (points) count as equal: one standard error of a
// top-1 near 80% on 5,000 images is about 0.6 points. Among equal
// candidates the one with the smallest worst loss against zero-shot wins.
const SCORE_TIE = 0.1;

// CLIP's logit scale. A library default serves every CLIP model, and this
// is the learned scale of the released ones. So among equal candidates
// (within SCORE_TIE) it is kept, and only a clearly better score moves it.
const PRIOR_LOGIT_SCALE = 100;

// Shots per class of the training-free streams; the score averages them
// with DMN zero-shot, so that the defaults serve few shots as well as many.
const SHOT_COUNTS = [1, 4, 16];

function argMax3(a, b, c, wb, wc, offset, classes) {
  let best = 0, bestValue = -Infinity;
  for (let k = 0; k < classes; k += 1) {
    const v = a[offset + k] + wb * b[offset + k] + (c ? wc * c[offset + k] : 0);
    if (v > bestValue) { bestValue = v; best = k; }
  }
  return best;
}

function recorder(count, classes) {
  const record = { text: new Float32Array(count * classes), dynamic: new Float32Array(count * classes),
    static: new Float32Array(count * classes), labels: new Uint8Array(count), n: 0, hasStatic: false };
  record.push = (step, label) => {
    const o = record.n * classes;
    record.text.set(step.text, o);
    record.dynamic.set(step.dynamic, o);
    if (step.static) { record.static.set(step.static, o); record.hasStatic = true; }
    record.labels[record.n] = label;
    record.n += 1;
  };
  return record;
}

function accuracy(record, wd, ws, classes) {
  let correct = 0;
  for (let i = 0; i < record.n; i += 1) {
    const label = argMax3(record.text, record.dynamic, record.hasStatic ? record.static : null,
      wd, ws, i * classes, classes);
    if (label === record.labels[i]) correct += 1;
  }
  return 100 * correct / record.n;
}

/**
 * Draws 16 shots per class with seed 7 and returns them with the other
 * images in a seed-0 order, so every tuning run sees the same split.
 */
function splitShots(labels, classes) {
  const shots = drawShots(labels, classes, 16, seededRandom(7));
  const isShot = new Set(shots.flat());
  const rest = shuffledIndices(labels.length, seededRandom(0)).filter((i) => !isShot.has(i));
  return { shots, rest };
}

/**
 * Runs the grid and returns the chosen values with a text report.
 * @param {object} core the WebAssembly module
 * @param {object} o `text`, `config` (defaults to start from), `modelScale`
 *   (the model's learned logit scale), `load(name, count, views)` of a
 *   validation set, `sets` (names), `limit`, `subset`
 */
export async function tune(core, o) {
  const classes = o.text.length;
  const dim = o.text[0].length;
  const sets = [];
  for (const name of o.sets) {
    const set = await o.load(name, o.limit, 1);
    // Fewer shots are the first ones of the 16, and the queries are the
    // images that are none of the 16, so every shot count sees one stream.
    const { shots, rest } = splitShots(set.labels, classes);
    const zeroShot = 100 * zeroShotCorrect(set.embeddings, 1, set.labels, o.text, dim) / set.labels.length;
    sets.push({ name, set, shots, rest, zeroShot });
  }
  const modelScale = o.modelScale;
  const lines = ['logit scale, beta, dynamic, static: mean DMN zs | mean free 1 | free 4 | free 16 | ' +
    'worst zs gap | score'];
  const candidates = [];
  for (const scaleOption of GRID.logitScale) {
    const logitScale = scaleOption === 'model' ? modelScale : scaleOption;
    for (const beta of GRID.beta) {
      const config = { ...o.config, logitScale, beta };
      const records = sets.map(({ set, shots, rest }) => {
        const zs = recorder(set.labels.length, classes);
        const all = shuffledIndices(set.labels.length, seededRandom(0));
        runStream(core, { text: o.text, config, numViews: 1, embeddings: set.embeddings,
          labels: set.labels, order: all, record: zs.push });
        const free = SHOT_COUNTS.map((k) => {
          const record = recorder(rest.length, classes);
          runStream(core, { text: o.text, config, numViews: 1, embeddings: set.embeddings,
            labels: set.labels, order: rest,
            shots: { embeddings: set.embeddings, indices: shots.map((list) => list.slice(0, k)) },
            record: record.push });
          return record;
        });
        return { zs, free };
      });
      for (const wd of GRID.dynamic) {
        for (const ws of GRID.static) {
          const zsAcc = records.map((r) => accuracy(r.zs, wd, 0, classes));
          const gap = Math.min(...zsAcc.map((a, i) => a - sets[i].zeroShot));
          const mean = (values) => values.reduce((s, a) => s + a, 0) / values.length;
          const meanZs = mean(zsAcc);
          const meanFree = SHOT_COUNTS.map((_, k) => mean(records.map((r) => accuracy(r.free[k], wd, ws, classes))));
          const score = mean([meanZs, ...meanFree]);
          candidates.push({ logitScale: scaleOption, beta, dynamic: wd, static: ws, meanZs, meanFree, gap, score });
          lines.push(`${scaleOption}, ${beta}, ${wd}, ${ws}: ${meanZs.toFixed(2)} | ` +
            `${meanFree.map((v) => v.toFixed(2)).join(' | ')} | ${gap.toFixed(2)} | ${score.toFixed(3)}`);
        }
      }
    }
  }
  // Rule: drop candidates that lose more than MAX_LOSS on some set. Keep
  // those within SCORE_TIE of the best remaining score. Among them prefer
  // CLIP's logit scale, then the smallest worst loss, then the higher score.
  const allowed = candidates.filter((c) => c.gap >= -MAX_LOSS);
  const pool = allowed.length > 0 ? allowed : candidates;
  const top = Math.max(...pool.map((c) => c.score));
  const prior = (c) => (c.logitScale === PRIOR_LOGIT_SCALE ? 0 : 1);
  const best = pool.filter((c) => c.score >= top - SCORE_TIE)
    .sort((a, b) => prior(a) - prior(b) || b.gap - a.gap || b.score - a.score)[0];
  lines.push(`best score ${top.toFixed(3)}; chosen: ${JSON.stringify(best)}`);

  // The selection ratio matters only with several views: scored on the
  // multi-view subset with the chosen values.
  const logitScale = best.logitScale === 'model' ? modelScale : best.logitScale;
  const ratios = [];
  for (const selectionRatio of GRID.selectionRatio) {
    const config = { ...o.config, logitScale, beta: best.beta, selectionRatio,
      weights: { text: 1, dynamic: best.dynamic, static: best.static } };
    let sum = 0;
    for (const { name } of sets) {
      const set = await o.load(name, Math.min(o.limit, o.subset), 8);
      const r = runStream(core, { text: o.text, config, numViews: 8, embeddings: set.embeddings,
        labels: set.labels, order: shuffledIndices(set.labels.length, seededRandom(0)) });
      sum += 100 * r.correct / r.count;
    }
    ratios.push({ selectionRatio, mean: sum / sets.length });
    lines.push(`selection ratio ${selectionRatio}: mean DMN zs 8 views ${(sum / sets.length).toFixed(2)}`);
  }
  const bestRatio = ratios.reduce((a, b) => (b.mean > a.mean ? b : a));
  lines.push(`chosen selection ratio: ${bestRatio.selectionRatio}`);
  lines.push(`zero-shot per set: ${sets.map((s) => `${s.name} ${s.zeroShot.toFixed(2)}`).join(', ')}`);
  return { chosen: { ...best, selectionRatio: bestRatio.selectionRatio }, ratios,
    text: `${lines.join('\n')}\n` };
}

export const TRAIN_GRID = Object.freeze({
  learningRate: [3e-4, 1e-3, 3e-3, 1e-2],
  epochs: [5, 10, 20, 50],
  perClassRateScale: [0.1, 0.3, 1],
});

/**
 * Chooses the training options on the validation sets, with the DMN
 * defaults in `o.config`: for every grid point, the adapter is trained on 4
 * and 16 shots per class and scored on the other images of the set; the
 * score is the mean top-1 over sets and both shot counts.
 */
export async function tuneTraining(core, o) {
  const classes = o.text.length;
  const sets = [];
  for (const name of o.sets) {
    const set = await o.load(name, o.limit, 1);
    const { shots, rest } = splitShots(set.labels, classes);
    sets.push({ set, shots, rest });
  }
  const score = (train) => {
    let sum = 0;
    for (const { set, shots, rest } of sets) {
      for (const k of [4, 16]) {
        const r = runStream(core, { text: o.text, config: o.config, numViews: 1,
          embeddings: set.embeddings, labels: set.labels, order: rest, train,
          shots: { embeddings: set.embeddings, indices: shots.map((list) => list.slice(0, k)) } });
        sum += 100 * r.correct / r.count;
      }
    }
    return sum / (2 * sets.length);
  };
  const lines = [`training-free 4 and 16 shots: ${score(null).toFixed(2)}`,
    'learning rate, epochs, per-class rate scale: mean trained 4 and 16 shots'];
  let best = null;
  for (const learningRate of TRAIN_GRID.learningRate) {
    for (const epochs of TRAIN_GRID.epochs) {
      for (const perClassRateScale of TRAIN_GRID.perClassRateScale) {
        const train = { ...o.trainDefaults, learningRate, epochs, perClassRateScale };
        const value = score(train);
        lines.push(`${learningRate}, ${epochs}, ${perClassRateScale}: ${value.toFixed(2)}`);
        if (!best || value > best.value) best = { learningRate, epochs, perClassRateScale, value };
      }
    }
  }
  lines.push(`chosen: ${JSON.stringify(best)}`);
  return { chosen: best, text: `${lines.join('\n')}\n` };
}
