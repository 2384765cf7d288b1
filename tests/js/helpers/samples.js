// The embedded model and the Fashion-MNIST sample images the classifier
// tests run on.

import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const MODEL_DIR = new URL('../../../models/tiny-clip/', import.meta.url);
export const SAMPLES_DIR = new URL('../../fixtures/fashion-mnist-samples/', import.meta.url);

/** Returns why the model tests cannot run, or null when they can. */
export function modelSkipReason() {
  const required = [new URL('onnx/vision_model_quantized.onnx', MODEL_DIR), new URL('config.json', MODEL_DIR)];
  if (!required.every((url) => existsSync(url))) return 'models/tiny-clip is not built yet';
  if (!existsSync(SAMPLES_DIR)) return 'tests/fixtures/fashion-mnist-samples is missing';
  return null;
}

/** Class names: the sub-folders of the samples folder, sorted. */
export function sampleClasses() {
  return readdirSync(SAMPLES_DIR, { withFileTypes: true })
    .filter((entry) => entry.isDirectory()).map((entry) => entry.name).sort();
}

/**
 * Returns `perClass` images of each class, interleaved by class so that a
 * stream of them is not sorted by label.
 *
 * @returns {{className:string, path:string, relative:string}[]}
 */
export function sampleImages(perClass, offset = 0) {
  const byClass = sampleClasses().map((className) => {
    const files = readdirSync(new URL(`${encodeURIComponent(className)}/`, SAMPLES_DIR))
      .filter((name) => name.endsWith('.png')).sort().slice(offset, offset + perClass);
    return files.map((file) => ({
      className,
      path: fileURLToPath(new URL(`${encodeURIComponent(className)}/${file}`, SAMPLES_DIR)),
      relative: `tests/fixtures/fashion-mnist-samples/${encodeURIComponent(className)}/${file}`,
    }));
  });
  const images = [];
  for (let i = 0; i < perClass; i += 1) {
    for (const list of byClass) if (i < list.length) images.push(list[i]);
  }
  return images;
}
