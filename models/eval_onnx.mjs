// Measures zero-shot accuracy of the exported tiny CLIP with ONNX Runtime Web.
//
// Reads the inputs that export_onnx.py writes to models/cache/ (resized test
// images, labels, prompt token ids and torch reference embeddings). Runs the
// float and int8 graphs of models/tiny-clip/onnx/ on the WebAssembly backend.
// Prints JSON with each graph's largest difference from torch and its top-1
// accuracy on the test images, and the cosine between float and int8
// embeddings. The class embedding is the mean of the unit prompt embeddings
// over all templates, scaled to unit length.
//
// Usage: node models/eval_onnx.mjs [--model-dir DIR] [--cache DIR] [--limit N]

import { readFileSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-web';

const here = dirname(fileURLToPath(import.meta.url));
const { values: options } = parseArgs({
  options: {
    'model-dir': { type: 'string', default: join(here, 'tiny-clip') },
    cache: { type: 'string', default: join(here, 'cache') },
    limit: { type: 'string', default: '0' },
    threads: { type: 'string', default: '1' },
  },
});
ort.env.wasm.numThreads = Number(options.threads);

const BATCH = 250;

function readTyped(name, Type) {
  const bytes = readFileSync(join(options.cache, name));
  return new Type(bytes.buffer, bytes.byteOffset, bytes.byteLength / Type.BYTES_PER_ELEMENT);
}

function unit(vector) {
  let norm = 0;
  for (const v of vector) norm += v * v;
  norm = Math.sqrt(norm) || 1;
  return vector.map((v) => v / norm);
}

function dot(a, b) {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i] * b[i];
  return sum;
}

function rows(data, width) {
  const out = [];
  for (let i = 0; i < data.length; i += width) out.push(Array.from(data.subarray(i, i + width)));
  return out;
}

function maxAbsDiff(a, b) {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

// Turns resized uint8 gray images into normalized float32 RGB, as CLIPImageProcessor does.
function pixelValues(images, start, count, size, meta) {
  const plane = size * size;
  const out = new Float32Array(count * 3 * plane);
  for (let n = 0; n < count; n++) {
    const source = images.subarray((start + n) * plane, (start + n + 1) * plane);
    for (let c = 0; c < 3; c++) {
      const offset = (n * 3 + c) * plane;
      for (let i = 0; i < plane; i++) {
        out[offset + i] = (source[i] / 255 - meta.mean[c]) / meta.std[c];
      }
    }
  }
  return new ort.Tensor('float32', out, [count, 3, size, size]);
}

async function session(name) {
  const bytes = readFileSync(join(options['model-dir'], 'onnx', name));
  return ort.InferenceSession.create(bytes, { executionProviders: ['wasm'] });
}

async function textEmbeds(text, meta) {
  const ids = readTyped('prompt_ids_i64.bin', BigInt64Array);
  const mask = readTyped('prompt_mask_i64.bin', BigInt64Array);
  const count = ids.length / meta.context_length;
  const shape = [count, meta.context_length];
  const result = await text.run({
    input_ids: new ort.Tensor('int64', ids, shape),
    attention_mask: new ort.Tensor('int64', mask, shape),
  });
  return result.text_embeds.data;
}

function classEmbeddings(promptEmbeds, meta) {
  const templates = meta.templates.length;
  const prompts = rows(promptEmbeds, meta.projection_dim).map(unit);
  return meta.classes.map((_, c) => {
    const mean = new Array(meta.projection_dim).fill(0);
    for (let t = 0; t < templates; t++) {
      prompts[c * templates + t].forEach((v, i) => { mean[i] += v / templates; });
    }
    return unit(mean);
  });
}

async function imageEmbeds(vision, images, count, meta) {
  const out = new Float32Array(count * meta.projection_dim);
  for (let start = 0; start < count; start += BATCH) {
    const size = Math.min(BATCH, count - start);
    const result = await vision.run({
      pixel_values: pixelValues(images, start, size, meta.image_size, meta),
    });
    out.set(result.image_embeds.data, start * meta.projection_dim);
  }
  return out;
}

function accuracy(embeds, classes, labels, meta) {
  let correct = 0;
  rows(embeds, meta.projection_dim).forEach((row, n) => {
    const image = unit(row);
    let best = 0;
    classes.forEach((c, k) => { if (dot(image, c) > dot(image, classes[best])) best = k; });
    if (best === labels[n]) correct += 1;
  });
  return correct / (embeds.length / meta.projection_dim);
}

function cosineStats(a, b, width) {
  const cosines = rows(a, width).map((row, i) => dot(unit(row), unit(Array.from(b.subarray(i * width, (i + 1) * width)))));
  return {
    mean: cosines.reduce((s, v) => s + v, 0) / cosines.length,
    min: Math.min(...cosines),
  };
}

async function main() {
  const meta = JSON.parse(readFileSync(join(options.cache, 'eval_inputs.json'), 'utf8'));
  const images = readTyped('test_images_u8.bin', Uint8Array);
  const labels = readTyped('test_labels_u8.bin', Uint8Array);
  const limit = Number(options.limit);
  const count = limit > 0 ? Math.min(limit, meta.image_count) : meta.image_count;
  const report = { image_count: count, models: {} };
  const embeds = {};

  for (const [variant, suffix] of [['fp32', ''], ['int8', '_quantized']]) {
    const started = Date.now();
    const vision = await session(`vision_model${suffix}.onnx`);
    const text = await session(`text_model${suffix}.onnx`);
    const prompt = await textEmbeds(text, meta);
    const image = await imageEmbeds(vision, images, count, meta);
    embeds[variant] = { prompt, image };
    report.models[variant] = {
      zero_shot_top1: accuracy(image, classEmbeddings(prompt, meta), labels, meta),
      max_abs_diff_from_torch: {
        image: maxAbsDiff(image.subarray(0, meta.reference_count * meta.projection_dim),
          readTyped('image_embeds_ref_f32.bin', Float32Array)),
        text: maxAbsDiff(prompt, readTyped('text_embeds_ref_f32.bin', Float32Array)),
      },
      seconds: (Date.now() - started) / 1000,
    };
    await vision.release();
    await text.release();
  }

  report.cosine_fp32_int8 = {
    image: cosineStats(embeds.fp32.image, embeds.int8.image, meta.projection_dim),
    text: cosineStats(embeds.fp32.prompt, embeds.int8.prompt, meta.projection_dim),
  };
  const text = JSON.stringify(report, null, 2);
  writeFileSync(join(options.cache, 'eval_onnx.json'), `${text}\n`);
  console.log(text);
}

await main();
