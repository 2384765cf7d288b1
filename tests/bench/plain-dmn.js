// The DMN step as a web developer would write it in plain JavaScript: one
// Float32Array (or Int8Array with a scale) per slot, the readout's weighted
// sum of slot vectors built per class, then normalised and scored. It is the
// baseline the WebAssembly core is measured against, not a reference: the
// golden traces are that. It covers what the benchmark runs, one view and no
// shots, with the library's defaults.

import { DMN_DEFAULTS } from '../../web/src/core.js';

function softmaxInPlace(logits) {
  let max = -Infinity;
  for (const value of logits) max = Math.max(max, value);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) {
    logits[i] = Math.exp(logits[i] - max);
    sum += logits[i];
  }
  for (let i = 0; i < logits.length; i++) logits[i] /= sum;
  return logits;
}

function entropy(probabilities) {
  let h = 0;
  for (const p of probabilities) h -= p * Math.log(p + 1e-8);
  return h;
}

export class PlainDmn {
  /**
   * @param {number} dim embedding dimension
   * @param {object} [options] `logitScale`, `beta`, `capacity` and `weights`
   *   ({text, dynamic}) default to DMN_DEFAULTS; `precision` is 'float32' or
   *   'int8' (one scale per slot, max|value| / 127)
   */
  constructor(dim, {
    logitScale = DMN_DEFAULTS.logitScale,
    beta = DMN_DEFAULTS.beta,
    capacity = DMN_DEFAULTS.capacity,
    weights = DMN_DEFAULTS.weights,
    precision = 'float32',
  } = {}) {
    if (precision !== 'float32' && precision !== 'int8') {
      throw new Error(`precision is ${JSON.stringify(precision)}, expected "float32" or "int8"`);
    }
    this.dim = dim;
    this.logitScale = logitScale;
    this.beta = beta;
    this.capacity = capacity;
    this.weightText = weights.text;
    this.weightDynamic = weights.dynamic;
    this.precision = precision;
    this.texts = [];
    this.slots = [];  // per class: [{ vector, scale, entropy }]
  }

  #store(vector) {
    if (this.precision !== 'int8') return { vector: Float32Array.from(vector), scale: 1 };
    let maxAbs = 0;
    for (const value of vector) maxAbs = Math.max(maxAbs, Math.abs(value));
    const scale = maxAbs / 127 || 1;
    const quantized = new Int8Array(vector.length);
    for (let i = 0; i < vector.length; i++) quantized[i] = Math.round(vector[i] / scale);
    return { vector: quantized, scale };
  }

  /** Appends a class with its unit-length text embedding. */
  addClass(embedding) {
    this.texts.push(Float32Array.from(embedding));
    this.slots.push([]);
  }

  /** Stores a unit-length slot directly, as a memory restored from storage would be. */
  insert(classIndex, vector, slotEntropy) {
    this.slots[classIndex].push({ ...this.#store(vector), entropy: slotEntropy });
  }

  // Adds exp(-β(1 - cos)) · slot to the class prototype.
  #accumulate(vector, scale, query, prototype) {
    const dim = this.dim;
    let dot = 0;
    for (let i = 0; i < dim; i++) dot += vector[i] * query[i];
    const weight = Math.exp(-this.beta * (1 - dot * scale)) * scale;
    for (let i = 0; i < dim; i++) prototype[i] += weight * vector[i];
  }

  /** Classifies a unit-length query and updates the memory, as DualMemory.step does. */
  step(query) {
    const dim = this.dim;
    const numClasses = this.texts.length;

    // Zero-shot text probabilities.
    const text = new Float32Array(numClasses);
    for (let c = 0; c < numClasses; c++) {
      let dot = 0;
      for (let i = 0; i < dim; i++) dot += this.texts[c][i] * query[i];
      text[c] = this.logitScale * dot;
    }
    softmaxInPlace(text);
    let pseudoLabel = 0;
    for (let c = 1; c < numClasses; c++) if (text[c] > text[pseudoLabel]) pseudoLabel = c;
    const h = entropy(text);

    // Memory update: append while there is room, else replace the
    // highest-entropy slot when this one is more confident.
    const classSlots = this.slots[pseudoLabel];
    if (classSlots.length < this.capacity) {
      classSlots.push({ ...this.#store(query), entropy: h });
    } else {
      let worst = 0;
      for (let j = 1; j < classSlots.length; j++) {
        if (classSlots[j].entropy > classSlots[worst].entropy) worst = j;
      }
      if (h < classSlots[worst].entropy) classSlots[worst] = { ...this.#store(query), entropy: h };
    }

    // Readout: per class, weight the text embedding and each slot by
    // exp(-β(1 - cos)), sum the weighted vectors into a prototype, normalise
    // it and score the query.
    const dynamic = new Float32Array(numClasses);
    const prototype = new Float32Array(dim);
    for (let c = 0; c < numClasses; c++) {
      prototype.fill(0);
      this.#accumulate(this.texts[c], 1, query, prototype);
      for (const slot of this.slots[c]) this.#accumulate(slot.vector, slot.scale, query, prototype);
      let norm = 0;
      let score = 0;
      for (let i = 0; i < dim; i++) {
        norm += prototype[i] * prototype[i];
        score += prototype[i] * query[i];
      }
      dynamic[c] = this.logitScale * (score / (Math.sqrt(norm) || 1));
    }
    softmaxInPlace(dynamic);

    const fused = new Float32Array(numClasses);
    const weightSum = this.weightText + this.weightDynamic;
    let label = 0;
    for (let c = 0; c < numClasses; c++) {
      fused[c] = (this.weightText * text[c] + this.weightDynamic * dynamic[c]) / weightSum;
      if (fused[c] > fused[label]) label = c;
    }
    return { label, pseudoLabel, text, dynamic, fused };
  }
}
