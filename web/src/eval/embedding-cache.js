// Embeds the images of an evaluation set once per view count and keeps the
// result on disk, keyed by a digest of the image tower, so that a second
// `dualmem eval` reads floats instead of running the image tower again.

import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, rename, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';

import { decodeImage } from '../decode-node.js';
import { DualmemError } from '../errors.js';

// Images whose views go through the image tower in one run.
const IMAGES_PER_BATCH = 32;

/**
 * Returns the cache key of a model folder: the first 16 hex digits of a
 * SHA-256 over the int8 image tower and the preprocessing config, the only
 * files that image embeddings depend on.
 */
export async function imageModelKey(modelDir) {
  const hash = createHash('sha256');
  hash.update(await readFile(join(modelDir, 'onnx', 'vision_model_quantized.onnx')));
  hash.update(await readFile(join(modelDir, 'preprocessor_config.json')));
  return hash.digest('hex').slice(0, 16);
}

/**
 * Lists the images of a set folder in the order of their file names (the
 * image's index in the source file), each with its label: the position of
 * its class folder in `classes`.
 *
 * @returns {Promise<{files: string[], labels: Uint8Array}>}
 */
export async function listSet(dir, classes, limit = Infinity) {
  const entries = [];
  for (const [label, name] of classes.entries()) {
    let files;
    try {
      files = await readdir(join(dir, name));
    } catch (error) {
      throw new DualmemError('bad_option', `evaluation set ${dir} has no readable class folder ` +
        `${JSON.stringify(name)}: ${error.message}`);
    }
    for (const file of files) if (file.endsWith('.png')) entries.push({ file: join(dir, name, file), label });
  }
  entries.sort((a, b) => basename(a.file).localeCompare(basename(b.file)));
  const kept = entries.slice(0, limit);
  return { files: kept.map((e) => e.file), labels: Uint8Array.from(kept, (e) => e.label) };
}

/**
 * Returns the embeddings of `numViews` views of every image of a set:
 * images × numViews × dim floats, unnormalised, view 0 the plain image.
 * The views of image i use seed i, so every run sees the same views.
 *
 * @param {object} encoders a loaded ClipEncoders
 * @param {{files: string[], labels: Uint8Array}} set from listSet
 * @param {object} options `cacheDir`, `cacheKey` (from imageModelKey), `name`
 *   (cache file stem), `numViews`, `onProgress(done, total)`
 */
export async function embedSet(encoders, set, options) {
  const { numViews, cacheDir, name } = options;
  const dim = encoders.dim;
  const count = set.files.length;
  const folder = join(cacheDir, options.cacheKey);
  const stem = join(folder, `${name}-${count}-${numViews}v`);
  const cached = await readCache(stem, set.files, count * numViews * dim);
  if (cached) return cached;

  const embeddings = new Float32Array(count * numViews * dim);
  const preprocessor = encoders.preprocessor;
  for (let start = 0; start < count; start += IMAGES_PER_BATCH) {
    const end = Math.min(count, start + IMAGES_PER_BATCH);
    const decoded = await Promise.all(set.files.slice(start, end).map((file) => decodeImage(file)));
    const inputs = [];
    decoded.forEach((image, i) => {
      const views = preprocessor.runViews(image.pixels, image.width, image.height, image.channels,
        numViews, start + i);
      const size = views.length / numViews;
      for (let v = 0; v < numViews; v += 1) inputs.push(views.subarray(v * size, (v + 1) * size));
    });
    const outputs = await encoders.embedPixelValues(inputs);
    outputs.forEach((row, j) => embeddings.set(row, (start * numViews + j) * dim));
    options.onProgress?.(end, count);
  }
  await mkdir(folder, { recursive: true });
  const index = { files: set.files.map((file) => basename(file)), numViews, dim,
    key: options.cacheKey };
  await writeFile(`${stem}.f32.tmp`, new Uint8Array(embeddings.buffer));
  await rename(`${stem}.f32.tmp`, `${stem}.f32`);
  await writeFile(`${stem}.json`, `${JSON.stringify(index)}\n`);
  return embeddings;
}

// A cache entry counts only when its index names the same files in the same
// order and the float file has the expected size.
async function readCache(stem, files, length) {
  try {
    const index = JSON.parse(await readFile(`${stem}.json`, 'utf8'));
    if (index.files.length !== files.length ||
        index.files.some((file, i) => file !== basename(files[i]))) return null;
    const bytes = await readFile(`${stem}.f32`);
    if (bytes.length !== length * 4) return null;
    return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
  } catch {
    return null;
  }
}
