// Class embeddings from prompt texts: each prompt is encoded by the CLIP text
// tower, scaled to unit length, averaged, and the mean scaled to unit length
// again. Prompt embeddings are kept per model fingerprint in memory for the
// life of the page or process, and in Cache Storage across page loads.

import { sha256Hex } from './digest.js';

/** Cache Storage cache of prompt embeddings. */
export const PROMPT_CACHE_NAME = 'dualmem-prompt-embeddings-v1';

/** Texts encoded in one text-tower run; bounds the memory of a batch. */
export const TEXT_BATCH_SIZE = 64;

// fingerprint -> Map(prompt -> Float32Array), shared by every classifier here.
const memoryCache = new Map();

/**
 * Averages prompt embeddings into one unit-length class embedding.
 *
 * @param {Float32Array[]} embeddings one per prompt, each `dim` floats
 * @returns {Float32Array}
 */
export function averageUnitEmbeddings(embeddings) {
  const dim = embeddings[0].length;
  const sum = new Float64Array(dim);
  for (const embedding of embeddings) {
    let norm = 0;
    for (let i = 0; i < dim; i += 1) norm += embedding[i] * embedding[i];
    const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
    for (let i = 0; i < dim; i += 1) sum[i] += embedding[i] * scale;
  }
  let norm = 0;
  for (let i = 0; i < dim; i += 1) norm += sum[i] * sum[i];
  const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
  return Float32Array.from(sum, (value) => value * scale);
}

/** Class embeddings from prompt lists, encoding each prompt once per model fingerprint and process. */
export class ClassEmbedder {
  /**
   * @param {object} encoders a ClipEncoders (embedTexts, dim, fingerprint)
   * @param {object} [options]
   * @param {Cache|null} [options.store] Cache Storage cache for prompt embeddings
   * @param {(detail:{stage:string, loaded:number, total:number}) => void} [options.onProgress]
   * @param {(message:string, error?:Error) => void} [options.onStorageWarning]
   */
  constructor(encoders, options = {}) {
    this.encoders = encoders;
    this.store = options.store ?? null;
    this.onProgress = options.onProgress;
    this.onStorageWarning = options.onStorageWarning ?? (() => {});
    if (!memoryCache.has(encoders.fingerprint)) memoryCache.set(encoders.fingerprint, new Map());
    this.known = memoryCache.get(encoders.fingerprint);
  }

  /**
   * Computes one class embedding per prompt list, encoding only the prompts
   * that neither cache holds.
   *
   * @param {string[][]} promptLists
   * @returns {Promise<Float32Array[]>} unit-length class embeddings
   * @throws {DualmemError} the errors of the text encoder and tokenizer
   */
  async embedClasses(promptLists) {
    await Promise.all(promptLists.map((prompts) => this.#loadStored(prompts)));
    const missing = [...new Set(promptLists.flat())].filter((prompt) => !this.known.has(prompt));
    for (let start = 0; start < missing.length; start += TEXT_BATCH_SIZE) {
      const batch = missing.slice(start, start + TEXT_BATCH_SIZE);
      const embeddings = await this.encoders.embedTexts(batch);
      batch.forEach((prompt, i) => this.known.set(prompt, embeddings[i]));
      this.onProgress?.({ stage: 'prompts', loaded: start + batch.length, total: missing.length });
    }
    if (missing.length > 0) {
      const fresh = new Set(missing);
      const touched = promptLists.filter((prompts) => prompts.some((prompt) => fresh.has(prompt)));
      await Promise.all(touched.map((prompts) => this.#store(prompts)));
    }
    return promptLists.map((prompts) => averageUnitEmbeddings(prompts.map((p) => this.known.get(p))));
  }

  async #key(prompts) {
    const digest = await sha256Hex(new TextEncoder().encode(JSON.stringify(prompts)));
    // Cache Storage keys must be http(s) URLs; the .invalid domain never resolves.
    return `https://dualmem.invalid/prompt-embeddings/${this.encoders.fingerprint}/${digest}`;
  }

  async #loadStored(prompts) {
    if (this.store === null || prompts.every((prompt) => this.known.has(prompt))) return;
    try {
      const response = await this.store.match(await this.#key(prompts));
      if (!response) return;
      const floats = new Float32Array(await response.arrayBuffer());
      const dim = this.encoders.dim;
      // A stored entry of the wrong length is ignored and rewritten after encoding.
      if (floats.length !== prompts.length * dim) return;
      prompts.forEach((prompt, i) => this.known.set(prompt, floats.slice(i * dim, (i + 1) * dim)));
    } catch (error) {
      this.onStorageWarning(`reading prompt embeddings from Cache Storage failed (${error?.message ?? error})`, error);
    }
  }

  async #store(prompts) {
    if (this.store === null) return;
    const dim = this.encoders.dim;
    const floats = new Float32Array(prompts.length * dim);
    prompts.forEach((prompt, i) => floats.set(this.known.get(prompt), i * dim));
    try {
      await this.store.put(await this.#key(prompts),
        new Response(floats, { headers: { 'content-type': 'application/octet-stream' } }));
    } catch (error) {
      this.onStorageWarning(`storing prompt embeddings in Cache Storage failed (${error?.message ?? error}); ` +
        'they will be computed again next time', error);
    }
  }
}
