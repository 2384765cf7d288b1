// Memory benchmark, in two parts.
// 1. The cost of the DMN memories for each precision at 1000 classes × 50
//    slots × 512 dims. It reports the core's own accounting
//    (DualMemory.memoryBytes) split into per-class and per-slot parts, the
//    WASM heap that filling takes, and the size of the snapshot that
//    IndexedDB stores.
// 2. The WASM heap over a long run of the real classifier: createClassifier
//    with the embedded model classifies the Fashion-MNIST test images one
//    by one, and the heap sizes are read at checkpoints.
// Writes build/bench/memory.json.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { deflateSync, gunzipSync } from 'node:zlib';

import { DualMemory, loadCore } from '../../web/src/core.js';
import { createClassifier } from '../../web/src/index.js';
import { printTable } from './harness.js';

const BENCH_DIR = new URL('../../build/bench/', import.meta.url);
const WASM_DIR = new URL('../../web/wasm/', import.meta.url);
// From the Debian package dataset-fashion-mnist.
const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';
// Fashion-MNIST's classes in label order, named as models/fashion_mnist.py
// names them for the prompts.
const FASHION_CLASSES = ['t-shirt', 'trouser', 'pullover', 'dress', 'coat',
  'sandal', 'shirt', 'sneaker', 'bag', 'ankle boot'];

// Bytes of one stored element of each precision, and of the per-slot
// metadata: sizeof(SlotInfo) in src/memory_bank.h on wasm32 is a uint8 and
// a uint16 padded to 8 bytes, then three 8-byte fields.
const ELEMENT_BYTES = { float32: 4, float16: 2, int8: 1 };
const SLOT_INFO_BYTES = 32;
const FLOAT_BYTES = 4;

const MIB = 1024 * 1024;

function heapBytes(core) {
  return core.HEAPU8.buffer.byteLength;
}

/** Deterministic pseudo-random vectors; the core normalizes them. */
function makeVectors(count, dim, seed) {
  const data = new Float32Array(count * dim);
  let state = seed >>> 0;
  for (let i = 0; i < data.length; i += 1) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    data[i] = state / 2 ** 32 - 0.5;
  }
  return data;
}

/**
 * Starts a new instance of the SIMD core, so that each precision's heap
 * growth is measured from the same empty heap. loadCore would return the
 * instance it has already loaded.
 */
async function freshCore() {
  const { default: createCore } = await import('../../web/wasm/dualmem_core_simd.mjs');
  return createCore({ wasmBinary: readFileSync(new URL('dualmem_core_simd.wasm', WASM_DIR)) });
}

/**
 * Computes the core's MemoryBytes from what it counts (src/memory_bank.cc and
 * src/dmn.cc), for C classes of S dynamic slots each. A class costs its
 * text embedding twice (the float32 row of the text head and the text slot
 * of the bank) and a (S + 1)² float32 Gram matrix over all its slots. The
 * Gram entries beyond the text slot's own are counted as the dynamic
 * slots' share.
 */
function expectedBytes(precision, numClasses, slotsPerClass, dim) {
  const vector = dim * ELEMENT_BYTES[precision];
  const scale = precision === 'int8' ? FLOAT_BYTES : 0;
  const slotsWithText = slotsPerClass + 1;
  const perClass = dim * FLOAT_BYTES + vector + scale + SLOT_INFO_BYTES + FLOAT_BYTES;
  const gramShare = ((slotsWithText ** 2 - 1) * FLOAT_BYTES) / slotsPerClass;
  const perSlot = { vector, scale, metadata: SLOT_INFO_BYTES, gram: gramShare };
  const slotBytes = vector + scale + SLOT_INFO_BYTES + gramShare;
  return {
    perClass,
    perSlot,
    slotBytes,
    gramPerClass: slotsWithText ** 2 * FLOAT_BYTES,
    total: numClasses * (perClass + slotsPerClass * slotBytes),
  };
}

/**
 * Allocates and frees a block of `probeBytes` and returns its address. When
 * no freed block is that large, dlmalloc (Emscripten's default malloc)
 * carves it from the top of the heap, so the address is where the free
 * space at the end of the heap begins. The difference of two such
 * addresses is the heap taken in between, allocator overhead and freed
 * blocks below the top included, without the slack that the heap's growth
 * policy adds (up to 20% per growth in Emscripten 3.1.6). The probe may
 * grow the heap, so read heapBytes first.
 */
function heapTop(core, probeBytes) {
  const address = core._malloc(probeBytes);
  if (address === 0) throw new Error(`malloc(${probeBytes}) failed in the heap probe`);
  core._free(address);
  return address;
}

// Probe sizes: the start probe must fit the initial heap, and the final one
// must exceed every block freed while filling. Those are old buffers of
// growing vectors, and the largest, of the text embeddings, is about 1 MiB
// at 1000 classes of 512 dims.
const START_PROBE_BYTES = 1 * MIB;
const END_PROBE_BYTES = 16 * MIB;
// A free block of this size or more below the top would be returned in
// place of the top. Either way the address changes only when the
// allocator's free blocks change.
const RUN_PROBE_BYTES = 1 * MIB;

async function measurePrecision(precision, { numClasses, slotsPerClass, dim }) {
  const core = await freshCore();
  const texts = makeVectors(numClasses, dim, 1);
  const slots = makeVectors(numClasses * slotsPerClass, dim, 2);
  const classNames = Array.from({ length: numClasses }, (_, i) => `class ${i}`);
  const fingerprint = 'ab'.repeat(32);
  const config = { capacity: slotsPerClass, precision };
  const addClasses = (memory) => {
    for (let c = 0; c < numClasses; c += 1) memory.addClass(texts.subarray(c * dim, (c + 1) * dim));
  };

  const heapStart = heapBytes(core);
  const topStart = heapTop(core, START_PROBE_BYTES);
  const memory = new DualMemory(core, dim, config);
  let classesOnly, full;
  try {
    addClasses(memory);
    classesOnly = { bytes: memory.memoryBytes, heapGrowth: heapBytes(core) - heapStart };
    for (let c = 0; c < numClasses; c += 1) {
      for (let s = 0; s < slotsPerClass; s += 1) {
        const index = c * slotsPerClass + s;
        memory.restoreDynamic(c, slots.subarray(index * dim, (index + 1) * dim), 1 + s / slotsPerClass, 0);
      }
    }
    full = { bytes: memory.memoryBytes, heapGrowth: heapBytes(core) - heapStart };
    full.allocatedBytes = heapTop(core, END_PROBE_BYTES) - topStart;
    full.snapshotBytes = memory.saveSnapshot(fingerprint, { classNames }).length;
  } finally {
    memory.dispose();
  }

  // The snapshot of the classes alone comes last, so that its buffer is not
  // part of the heap measured above.
  const classesMemory = new DualMemory(core, dim, config);
  let classesSnapshot;
  try {
    addClasses(classesMemory);
    classesSnapshot = classesMemory.saveSnapshot(fingerprint, { classNames }).length;
  } finally {
    classesMemory.dispose();
  }

  const totalSlots = numClasses * slotsPerClass;
  return {
    precision,
    numClasses,
    slotsPerClass,
    dim,
    memoryBytes: full.bytes,
    fixedBytes: classesOnly.bytes,
    bytesPerSlot: (full.bytes - classesOnly.bytes) / totalSlots,
    expected: expectedBytes(precision, numClasses, slotsPerClass, dim),
    heap: {
      startBytes: heapStart,
      classesGrowthBytes: classesOnly.heapGrowth,
      fullGrowthBytes: full.heapGrowth,
      allocatedBytes: full.allocatedBytes,
    },
    snapshot: {
      bytes: full.snapshotBytes,
      classesOnlyBytes: classesSnapshot,
      bytesPerSlot: (full.snapshotBytes - classesSnapshot) / totalSlots,
    },
  };
}

/** Reads an idx file of Fashion-MNIST: unsigned bytes after a big-endian header. */
function readIdx(path, expectedMagic) {
  const data = gunzipSync(readFileSync(path));
  const magic = data.readUInt32BE(0);
  if (magic !== expectedMagic) throw new Error(`${path}: idx magic is ${magic}, expected ${expectedMagic}`);
  const dims = data[3];
  const shape = Array.from({ length: dims }, (_, i) => data.readUInt32BE(4 + 4 * i));
  const values = data.subarray(4 + 4 * dims);
  const count = shape.reduce((product, n) => product * n, 1);
  if (values.length !== count) {
    throw new Error(`${path}: ${values.length} values after the header, expected ${count} for shape ${shape}`);
  }
  return { shape, values };
}

const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes) {
  let c = 0xffffffff;
  for (const byte of bytes) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function pngChunk(type, data) {
  const chunk = Buffer.alloc(12 + data.length);
  chunk.writeUInt32BE(data.length, 0);
  chunk.write(type, 4, 'latin1');
  data.copy(chunk, 8);
  chunk.writeUInt32BE(crc32(chunk.subarray(4, 8 + data.length)), 8 + data.length);
  return chunk;
}

/**
 * Encodes 8-bit gray pixels as a PNG. Under Node the classifier takes
 * encoded images only, and this is far quicker than a round trip through
 * sharp for a 28 × 28 image.
 */
function encodeGrayPng(pixels, width, height) {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = 0; // colour type: gray
  // Each row starts with filter type 0 (none).
  const rows = Buffer.alloc((width + 1) * height);
  for (let y = 0; y < height; y += 1) rows.set(pixels.subarray(y * width, (y + 1) * width), y * (width + 1) + 1);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', header), pngChunk('IDAT', deflateSync(rows)), pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/**
 * Runs `body` while recording every WebAssembly.Memory created. ONNX
 * Runtime Web's threaded build creates its memory with `new
 * WebAssembly.Memory` and exposes no other handle on it, while the dualmem
 * core exports its memory from the module and is not recorded. Nothing is
 * recorded when ONNX Runtime was started earlier in this process.
 */
async function recordingMemories(body) {
  const Original = WebAssembly.Memory;
  const created = [];
  WebAssembly.Memory = class extends Original {
    constructor(descriptor) {
      super(descriptor);
      created.push(this);
    }
  };
  try {
    return { value: await body(), created };
  } finally {
    WebAssembly.Memory = Original;
  }
}

function checkpoint(images, core, classifier, ortMemories, start) {
  const stats = classifier.stats();
  const coreHeapBytes = heapBytes(core);
  return {
    images,
    seconds: (performance.now() - start) / 1000,
    coreHeapBytes,
    // A leak first fills the free room inside the heap, so the heap keeps its
    // size for a while. The allocator's top moves once the free blocks are used up.
    coreAllocatorTop: heapTop(core, RUN_PROBE_BYTES),
    ortHeapBytes: ortMemories.length === 0 ? null
      : ortMemories.reduce((sum, memory) => sum + memory.buffer.byteLength, 0),
    rssBytes: process.memoryUsage().rss,
    memoryBytes: stats.bytes,
    dynamicSlots: stats.classes.reduce((sum, entry) => sum + entry.dynamic, 0),
  };
}

let runCount = 0;

/**
 * Classifies `images` Fashion-MNIST test images with the real classifier
 * and reads the heap sizes at the checkpoints.
 */
async function measureLongRun({ images, checkpoints, views, threads, dataDir }) {
  let pixels, labels;
  try {
    pixels = readIdx(`${dataDir}/t10k-images-idx3-ubyte.gz`, 2051);
    labels = readIdx(`${dataDir}/t10k-labels-idx1-ubyte.gz`, 2049).values;
  } catch (error) {
    return { error: `Fashion-MNIST could not be read (${error.message}); install the Debian package ` +
      'dataset-fashion-mnist' };
  }
  const [available, height, width] = pixels.shape;
  const count = Math.min(images, available);
  const marks = new Set([...checkpoints.filter((n) => n <= count), count]);

  // loadCore keeps one core instance per variant and wasmUrl. A URL of this
  // run's own gives the classifier a new instance, so its heap contains
  // nothing from benchmarks run earlier in this process. loadCore with the
  // same URL then returns that instance.
  runCount += 1;
  const wasmUrl = new URL(`dualmem_core_simd.wasm?memory-run=${runCount}`, WASM_DIR);
  const { value: classifier, created } = await recordingMemories(() => createClassifier({
    classes: FASHION_CLASSES, mode: 'adaptive', store: 'memory', templates: 'simple', views, threads,
    wasmUrl, onWarning: (message) => console.error(`memory: ${message}`),
  }));
  const core = await loadCore({ variant: 'simd', wasmUrl });
  const start = performance.now();
  const points = [checkpoint(0, core, classifier, created, start)];
  const stageSums = { decode: 0, preprocess: 0, encode: 0, memory: 0, total: 0 };
  let correct = 0;
  try {
    for (let i = 0; i < count; i += 1) {
      const image = pixels.values.subarray(i * width * height, (i + 1) * width * height);
      const result = await classifier.classify(encodeGrayPng(image, width, height));
      if (result.label === FASHION_CLASSES[labels[i]]) correct += 1;
      for (const stage of Object.keys(stageSums)) stageSums[stage] += result.timings[stage];
      if (marks.has(i + 1)) points.push(checkpoint(i + 1, core, classifier, created, start));
      if ((i + 1) % 1000 === 0) console.error(`memory: ${i + 1}/${count} images classified`);
    }
  } finally {
    await classifier.dispose();
  }

  const elapsed = (performance.now() - start) / 1000;
  const warm = points.find((p) => p.images === 1000) ?? points[1] ?? points[0];
  const last = points.at(-1);
  return {
    images: count,
    views,
    threads,
    seconds: elapsed,
    msPerImage: (elapsed * 1000) / count,
    stageMsPerImage: Object.fromEntries(Object.entries(stageSums).map(([k, v]) => [k, v / count])),
    accuracy: correct / count,
    checkpoints: points,
    warmImages: warm.images,
    coreHeapGrowthAfterWarmBytes: last.coreHeapBytes - warm.coreHeapBytes,
    coreAllocatorTopGrowthAfterWarmBytes: last.coreAllocatorTop - warm.coreAllocatorTop,
    // A leak fills the free blocks below the allocator's top before it
    // moves the top, and those blocks add up to less than the top address.
    // So a steady top bounds a leak to less than this per image.
    leakBoundBytesPerImage: warm.coreAllocatorTop / Math.max(1, count - warm.images),
  };
}

/**
 * Measures the memory cost of each precision and the WASM heap over a long
 * classifier run.
 *
 * @param {object} [options]
 * @param {number} [options.numClasses=1000]
 * @param {number} [options.slotsPerClass=50] dynamic slots per class
 * @param {number} [options.dim=512]
 * @param {string[]} [options.precisions] default float32, float16 and int8
 * @param {number} [options.images=10000] test images to classify; 0 skips the run
 * @param {number[]} [options.checkpoints] image counts at which the heaps are read
 * @param {number} [options.views=1] test-time views per image
 * @param {number|'auto'} [options.threads=1] ONNX Runtime threads. One by
 *   default, because a second ORT thread competes with sharp's decoding on
 *   a 2-core machine and doubles the time per image
 * @param {string} [options.dataDir='/usr/share/datasets/fashion-mnist']
 * @returns {Promise<{precisions: object[], run: object|null}>} one entry per
 *   precision with `memoryBytes` (the core's count when full), `fixedBytes`
 *   (classes without slots), `bytesPerSlot`, `expected` (the count split into
 *   its parts), `heap` (sizes and `allocatedBytes` of a fresh core while
 *   filling) and `snapshot` (bytes); `run` has the `checkpoints` of the
 *   long run with the heap sizes, or `error` when Fashion-MNIST is missing,
 *   and is null with images: 0
 */
export async function benchMemory(options = {}) {
  const shape = {
    numClasses: options.numClasses ?? 1000,
    slotsPerClass: options.slotsPerClass ?? 50,
    dim: options.dim ?? 512,
  };
  const images = options.images ?? 10000;

  // The long run comes first, so its process RSS is not inflated by the
  // large memories of the first part.
  let run = null;
  if (images > 0) {
    console.error(`memory: classifying ${images} Fashion-MNIST test images`);
    run = await measureLongRun({
      images,
      checkpoints: options.checkpoints ?? [0, 100, 1000, 2000, 5000, 10000],
      views: options.views ?? 1,
      threads: options.threads ?? 1,
      dataDir: options.dataDir ?? FASHION_MNIST_DIR,
    });
  }

  const precisions = [];
  for (const precision of options.precisions ?? ['float32', 'float16', 'int8']) {
    console.error(`memory: filling ${shape.numClasses} × ${shape.slotsPerClass} × ${shape.dim} ${precision}`);
    precisions.push(await measurePrecision(precision, shape));
  }
  return { precisions, run };
}

const mib = (bytes) => `${(bytes / MIB).toFixed(1)} MiB`;
const count = (bytes) => Math.round(bytes).toLocaleString('en-US');

/** Prints the tables of `benchMemory` results. */
export function printMemory({ precisions, run }) {
  if (precisions.length > 0) {
    const { numClasses, slotsPerClass, dim } = precisions[0];
    console.log(`Memory cost, ${numClasses} classes × ${slotsPerClass} dynamic slots × ${dim} dims ` +
      '(core accounting; heap of a fresh core while filling)');
    printTable(['memory', 'total', 'per class', 'per slot', 'vector + scale + metadata + Gram',
      'heap allocated by filling', 'heap size before → after', 'snapshot', 'snapshot per slot'],
    precisions.map((p) => {
      const s = p.expected.perSlot;
      return [p.precision, `${count(p.memoryBytes)} B (${mib(p.memoryBytes)})`,
        `${count(p.fixedBytes / p.numClasses)} B`, `${count(p.bytesPerSlot)} B`,
        `${s.vector} + ${s.scale} + ${s.metadata} + ${s.gram.toFixed(0)}`,
        `${mib(p.heap.allocatedBytes)} (${(p.heap.allocatedBytes / p.memoryBytes).toFixed(3)}×)`,
        `${mib(p.heap.startBytes)} → ${mib(p.heap.startBytes + p.heap.fullGrowthBytes)}`,
        `${count(p.snapshot.bytes)} B (${mib(p.snapshot.bytes)})`, `${count(p.snapshot.bytesPerSlot)} B`];
    }));
    const { perClass, perSlot, gramPerClass } = precisions[0].expected;
    console.log(`Per class, ${precisions[0].precision}: ${dim * FLOAT_BYTES} B of float32 text embedding for ` +
      `the text head, ${perClass - dim * FLOAT_BYTES} B for the text slot in the bank, and a Gram matrix of ` +
      `${slotsPerClass + 1}² floats (${count(gramPerClass)} B), of which ${count(perSlot.gram * slotsPerClass)} B ` +
      `are counted in the per-slot figure (${perSlot.gram.toFixed(0)} B a slot).`);
    for (const p of precisions) {
      console.log(`${p.precision}: the heap allocated by filling exceeds the core's count by ` +
        `${count((p.heap.allocatedBytes - p.memoryBytes) / p.numClasses)} B a class (allocator headers, ` +
        'vector capacity, freed blocks, float scales of non-int8 slots and other bookkeeping that the ' +
        'count leaves out).');
    }
    for (const p of precisions) {
      if (p.expected.total !== p.memoryBytes) {
        console.log(`${p.precision}: the core counts ${count(p.memoryBytes)} B, the breakdown ` +
          `${count(p.expected.total)} B`);
      }
    }
  }
  if (run === null) return;
  console.log('');
  if (run.error) {
    console.log(`Long run: ${run.error}`);
    return;
  }
  console.log(`WASM heap over ${run.images} Fashion-MNIST test images (createClassifier, adaptive, ` +
    `${run.views} view, ${run.threads} ONNX Runtime thread; ${run.msPerImage.toFixed(1)} ms per image, ` +
    `top-1 ${(100 * run.accuracy).toFixed(1)}%)`);
  const header = ['images', 'dualmem heap', 'dualmem allocator top', 'ONNX Runtime heap', 'process RSS',
    'memoryBytes', 'dynamic slots', 'seconds'];
  printTable(header, run.checkpoints.map((p) => [
    p.images, `${count(p.coreHeapBytes)} B`, `${count(p.coreAllocatorTop)} B`,
    p.ortHeapBytes === null ? '—' : `${count(p.ortHeapBytes)} B`, mib(p.rssBytes),
    `${count(p.memoryBytes)} B`, p.dynamicSlots, p.seconds.toFixed(1)]));
  console.log(`dualmem heap growth from ${run.warmImages} to ${run.images} images: ` +
    `${count(run.coreHeapGrowthAfterWarmBytes)} B; allocator top growth: ` +
    `${count(run.coreAllocatorTopGrowthAfterWarmBytes)} B (a steady top bounds a leak to under ` +
    `${count(run.leakBoundBytesPerImage)} B per image)`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const images = process.argv[2] === undefined ? undefined : Number(process.argv[2]);
  const results = await benchMemory({ images });
  printMemory(results);
  mkdirSync(BENCH_DIR, { recursive: true });
  writeFileSync(new URL('memory.json', BENCH_DIR),
    JSON.stringify({ date: new Date().toISOString(), ...results }, null, 2));
}
