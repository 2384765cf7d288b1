// CLIP image and text encoders on ONNX Runtime Web, in Node and in the
// browser. Inputs and outputs keep the names of the Hugging Face export:
// pixel_values -> image_embeds, input_ids + attention_mask -> text_embeds.

import { loadCore, Preprocessor, Tokenizer } from './core.js';
import { contentDigest, modelFingerprintOfDigests } from './digest.js';
import { DualmemError } from './errors.js';
import { onnxFileNames, readClipMetadata, readModelBytes } from './model-files.js';

const isNode =
  typeof process !== 'undefined' && typeof process.versions?.node === 'string' &&
  typeof window === 'undefined';

// In a variable, so that bundlers do not try to pack a Node module for browsers.
const NODE_OS = 'node:os';

let ort = null;

// Node loads the package's Node build. The specifier is in a variable so
// that bundlers do not pack that build, and its 29 MB WebGPU-capable .wasm,
// into browser apps.
const ORT_FOR_NODE = 'onnxruntime-web';

/**
 * Imports ONNX Runtime Web once. Browsers get the WebAssembly-only build
 * `onnxruntime-web/wasm`, whose .wasm is about 15 MB. A module worker of a
 * page without a bundler does not see the page's import map, so the page
 * passes the URL of that build as `moduleUrl`.
 */
async function loadOrt(moduleUrl) {
  if (ort === null) {
    if (moduleUrl) ort = await import(/* @vite-ignore */ moduleUrl);
    else if (isNode) ort = await import(/* @vite-ignore */ ORT_FOR_NODE);
    else ort = await import('onnxruntime-web/wasm');
  }
  return ort;
}

/**
 * Chooses the ONNX Runtime thread count. Threads need SharedArrayBuffer,
 * which a page only has when it is cross-origin isolated.
 */
async function chooseThreads(threads, warn) {
  const isolated = isNode || globalThis.crossOriginIsolated === true;
  // Node 20 has no navigator, so the count comes from node:os.
  const cores = globalThis.navigator?.hardwareConcurrency ??
    (isNode ? (await import(/* @vite-ignore */ NODE_OS)).availableParallelism() : 1);
  if (threads === 'auto' || threads === undefined) {
    if (!isolated) {
      warn('the page is not cross-origin isolated, so ONNX Runtime runs on one thread; serve it ' +
        'with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp');
      return 1;
    }
    return Math.max(1, Math.min(4, cores));
  }
  if (!Number.isInteger(threads) || threads < 1) {
    throw new DualmemError('bad_option',
      `threads is ${JSON.stringify(threads)}, expected "auto" or a positive integer`);
  }
  if (threads > 1 && !isolated) {
    warn(`threads is ${threads} but the page is not cross-origin isolated; using 1 thread`);
    return 1;
  }
  return threads;
}

/**
 * Points ONNX Runtime at its `.wasm` files and checks that the location
 * serves WebAssembly, not an HTML fallback page.
 */
async function configureOrt(options, warn) {
  ort.env.wasm.numThreads = await chooseThreads(options.threads, warn);
  if (options.ortWasmPaths) {
    ort.env.wasm.wasmPaths = options.ortWasmPaths;
    if (!isNode && typeof options.ortWasmPaths === 'string') await probeWasm(options.ortWasmPaths);
  }
}

/**
 * Fetches the start of ONNX Runtime's `.wasm` file under `wasmPaths` and
 * checks the WebAssembly magic number, because a server that responds to unknown
 * paths with its index page would otherwise fail later with a compile error
 * that does not name the file.
 */
async function probeWasm(wasmPaths) {
  const probe = new URL('ort-wasm-simd-threaded.wasm', new URL(wasmPaths, location.href));
  const fail = (what) => new DualmemError('wasm_unavailable',
    `ONNX Runtime's WebAssembly file ${probe.href} ${what}; ` +
    'set ortWasmPaths to the folder that holds ort-wasm-simd-threaded.wasm');
  let response;
  try {
    response = await fetch(probe);
  } catch (error) {
    throw fail(`could not be fetched (${error.message})`);
  }
  const type = response.headers.get('content-type') ?? 'none';
  if (!response.ok) throw fail(`returned HTTP ${response.status}, expected 200`);

  // The first chunk is enough, so the rest of the download is cancelled.
  const reader = response.body.getReader();
  let head = new Uint8Array(0);
  while (head.length < 16) {
    const { done, value } = await reader.read();
    if (done) break;
    head = new Uint8Array([...head, ...value.subarray(0, 16 - head.length)]);
  }
  reader.cancel().catch(() => {});
  if (!WASM_MAGIC.every((byte, i) => head[i] === byte)) {
    const text = new TextDecoder().decode(head);
    const kind = type.includes('text/html') || text.startsWith('<') ? 'an HTML page' : 'not WebAssembly';
    throw fail(`is ${kind} (content-type ${type}, starts with ${JSON.stringify(text)}), ` +
      'expected the bytes \\0asm');
  }
}

// The first four bytes of every WebAssembly module: "\0asm".
const WASM_MAGIC = [0x00, 0x61, 0x73, 0x6d];

async function createSession(bytes, file) {
  try {
    return await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'] });
  } catch (error) {
    const message = String(error?.message ?? error);
    if (/wasm|WebAssembly|magic word/i.test(message) && !/protobuf|model/i.test(message)) {
      // "found 3c" is a `<` where the WebAssembly magic number should be.
      const html = /magic word.*found 3c/i.test(message) ? ' The .wasm location served an HTML page.' : '';
      throw new DualmemError('wasm_unavailable',
        `ONNX Runtime's WebAssembly could not be started: ${message}.${html} ` +
        'Set ortWasmPaths to where ort-wasm-simd-threaded.wasm is served', { file, cause: error });
    }
    throw new DualmemError('model_not_clip', `could not create an ONNX Runtime session for ${file}: ${message}`,
      { file, cause: error });
  }
}

/**
 * Returns contentDigest of a file from readModelBytes, reusing the SHA-256 of
 * the cache check. The two are equal only where Web Crypto exists. Cache
 * Storage never exists without it, but the check keeps that explicit.
 */
async function knownOrContentDigest(file) {
  if (file.sha256 !== null && globalThis.crypto?.subtle) return file.sha256;
  return contentDigest(file.bytes);
}

function requireNames(session, inputs, outputs, file) {
  for (const name of inputs) {
    if (!session.inputNames.includes(name)) {
      throw new DualmemError('model_not_clip',
        `${file} has inputs [${session.inputNames.join(', ')}], expected one named ${name}`, { file });
    }
  }
  for (const name of outputs) {
    if (!session.outputNames.includes(name)) {
      throw new DualmemError('model_not_clip',
        `${file} has outputs [${session.outputNames.join(', ')}], expected one named ${name}`, { file });
    }
  }
}

/** The two CLIP towers with the core's tokenizer and preprocessing. */
export class ClipEncoders {
  /**
   * Loads a CLIP folder.
   *
   * @param {string|URL} [model] folder or URL; default the embedded model
   * @param {object} [options]
   * @param {boolean} [options.quantized=true] load the int8 ONNX files
   * @param {'auto'|number} [options.threads='auto']
   * @param {string} [options.ortWasmPaths] folder of ONNX Runtime's .wasm files
   * @param {function} [options.onProgress] ({file, loaded, total}) while reading
   * @param {function} [options.onWarning] (message) for non-fatal problems
   * @param {string} [options.ortModuleUrl] where to import ONNX Runtime Web
   *   from, instead of the `onnxruntime-web` package
   * @throws {DualmemError} `model_not_found`, `model_not_clip`, `wasm_unavailable`, `bad_option`
   */
  static async load(model, options = {}) {
    const warn = options.onWarning ?? ((message) => console.warn(`dualmem: ${message}`));
    try {
      await loadOrt(options.ortModuleUrl);
    } catch (error) {
      throw new DualmemError('wasm_unavailable',
        `ONNX Runtime Web could not be imported from ${options.ortModuleUrl ?? 'onnxruntime-web'}: ` +
        `${error?.message ?? error}`, { cause: error });
    }
    await configureOrt(options, warn);
    const metadata = await readClipMetadata(model, options);
    const files = onnxFileNames(options.quantized ?? true);
    const [visionFile, textFile] = await Promise.all([
      readModelBytes(metadata.base, files.vision, options),
      readModelBytes(metadata.base, files.text, options),
    ]);
    const visionBytes = visionFile.bytes;
    const textBytes = textFile.bytes;
    const core = await loadCore(options.core ?? {});
    const vision = await createSession(visionBytes, files.vision);
    const text = await createSession(textBytes, files.text);
    requireNames(vision, ['pixel_values'], ['image_embeds'], files.vision);
    requireNames(text, ['input_ids'], ['text_embeds'], files.text);
    // Each file is hashed at most once: the cache check's SHA-256 is reused
    // where there was one, and both fingerprints are built from the digests.
    const [visionDigest, textDigest, tokenizerDigest, preprocessorDigest] = await Promise.all([
      knownOrContentDigest(visionFile), knownOrContentDigest(textFile),
      contentDigest(new TextEncoder().encode(metadata.tokenizerJsonText)),
      contentDigest(new TextEncoder().encode(metadata.preprocessorConfigText)),
    ]);
    // Text embeddings depend on the text tower and the tokenizer only.
    const fingerprint = `${textDigest.slice(0, 32)}-${tokenizerDigest.slice(0, 16)}`;
    const encoders = new ClipEncoders(core, metadata, vision, text, fingerprint);
    // Stored memories hold image embeddings, so their fingerprint covers both
    // towers and the preprocessing as well.
    encoders.modelFingerprint = await modelFingerprintOfDigests([visionDigest, textDigest,
      tokenizerDigest, preprocessorDigest]);
    return encoders;
  }

  constructor(core, metadata, visionSession, textSession, fingerprint) {
    this.core = core;
    /** Digest of the text tower and tokenizer, naming which prompt embeddings are valid. */
    this.fingerprint = fingerprint;
    this.config = metadata.config;
    this.dim = metadata.projectionDim;
    this.contextLength = metadata.contextLength;
    this.tokenizer = new Tokenizer(core, metadata.tokenizerJsonText);
    this.preprocessor = new Preprocessor(core, metadata.preprocessorConfigText);
    this.visionSession = visionSession;
    this.textSession = textSession;
  }

  /** Turns decoded pixels ({pixels, width, height, channels}) into pixel_values. */
  preprocess(image) {
    return this.preprocessor.run(image.pixels, image.width, image.height, image.channels);
  }

  /**
   * Encodes preprocessed images (each 3 × H × W floats) in one batch.
   * @returns {Promise<Float32Array[]>} one unnormalised embedding per image
   */
  async embedPixelValues(pixelValuesList) {
    const height = this.preprocessor.cropHeight;
    const width = this.preprocessor.cropWidth;
    const size = 3 * height * width;
    const batch = new Float32Array(size * pixelValuesList.length);
    pixelValuesList.forEach((values, i) => batch.set(values, i * size));
    const feeds = {
      pixel_values: new ort.Tensor('float32', batch, [pixelValuesList.length, 3, height, width]),
    };
    const output = (await this.visionSession.run(feeds)).image_embeds;
    return splitRows(output.data, pixelValuesList.length);
  }

  /**
   * Encodes texts in one batch, padded to the longest text of the batch, or
   * to the graph's sequence length where that is fixed.
   * @returns {Promise<Float32Array[]>} one unnormalised embedding per text
   */
  async embedTexts(texts) {
    const encoded = texts.map((text) => this.tokenizer.encodeForModel(text, this.contextLength));
    const length = this.#paddedLength(encoded);
    const ids = new BigInt64Array(texts.length * length);
    const mask = new BigInt64Array(texts.length * length);
    encoded.forEach((tokens, row) => {
      for (let i = 0; i < length; i++) {
        ids[row * length + i] = BigInt(tokens.ids[i]);
        mask[row * length + i] = BigInt(tokens.attentionMask[i]);
      }
    });
    const feeds = { input_ids: new ort.Tensor('int64', ids, [texts.length, length]) };
    if (this.textSession.inputNames.includes('attention_mask')) {
      feeds.attention_mask = new ort.Tensor('int64', mask, [texts.length, length]);
    }
    const output = (await this.textSession.run(feeds)).text_embeds;
    return splitRows(output.data, texts.length);
  }

  /**
   * Returns the sequence length of a text batch. CLIP's causal text tower
   * pools at the end token, which never attends to the padding after it.
   * Cutting that padding changes the embedding only through the range of
   * the int8 activations. On 64 prompts of 12 tokens and a text tower of
   * ViT-B/32's size, the lowest cosine to the 77-token embedding was
   * 0.9987, and encoding took 3.6 s instead of 26 s (Node, 2 threads).
   */
  #paddedLength(encoded) {
    const metadata = this.textSession.inputMetadata?.find((input) => input.name === 'input_ids');
    const fixed = metadata?.shape?.[1];
    if (Number.isInteger(fixed)) return fixed;
    let longest = 1;
    for (const { attentionMask } of encoded) {
      let tokens = 0;
      for (const bit of attentionMask) tokens += bit;
      longest = Math.max(longest, tokens);
    }
    return longest;
  }

  /** Releases the sessions and the core objects. */
  async dispose() {
    this.tokenizer.dispose();
    this.preprocessor.dispose();
    await this.visionSession.release();
    await this.textSession.release();
  }
}

function splitRows(data, rows) {
  const width = data.length / rows;
  const result = [];
  for (let r = 0; r < rows; r++) result.push(data.slice(r * width, (r + 1) * width));
  return result;
}
