// The DMN step as a web developer would write it in plain JavaScript: one
// Float32Array (or Int8Array with a scale) per slot, the readout's weighted
// sum of slot vectors built per class, then normalised and scored. It is the
// baseline the WebAssembly core is measured against, not a reference: the
// golden traces are that.

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
  constructor(dim, { logitScale = 100, beta = 5.5, capacity = 50, precision = 'float32' } = {}) {
    this.dim = dim;
    this.logitScale = logitScale;
    this.beta = beta;
    this.capacity = capacity;
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

  addClass(embedding) {
    this.texts.push(Float32Array.from(embedding));
    this.slots.push([]);
  }

  /** Stores a slot directly, as a memory restored from storage would be. */
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

    // Readout: per class, weight each slot by exp(-β(1 - cos)), sum the
    // weighted vectors into a prototype, normalise it and score the query.
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
    let label = 0;
    for (let c = 0; c < numClasses; c++) {
      fused[c] = (1.0 * text[c] + 0.3 * dynamic[c]) / 1.3;
      if (fused[c] > fused[label]) label = c;
    }
    return { label, text, dynamic, fused };
  }
}
