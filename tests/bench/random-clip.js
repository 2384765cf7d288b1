// The CLIP of ViT-B/32's shape with random weights that the end-to-end and
// cold-start benchmarks run. models/make_random_clip.py makes it under the
// build folder on first use, which took 70 s and 3.2 GB of RAM on 2 cores.

import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Debian's Python, which has python3-torch and python3-onnx. */
const PYTHON = '/usr/bin/python3';

const SCRIPT = fileURLToPath(new URL('../../models/make_random_clip.py', import.meta.url));

/** Folder of the model, with a trailing slash. */
export const RANDOM_CLIP_DIR = fileURLToPath(
  new URL('../../build/bench/models/clip-vit-b32-random/', import.meta.url));

/** File names the script writes, the stamp last. */
const EXPECTED_FILES = [
  'config.json', 'preprocessor_config.json', 'tokenizer.json', 'tokenizer_config.json',
  'special_tokens_map.json', 'onnx/vision_model_quantized.onnx', 'onnx/text_model_quantized.onnx',
  'onnx/model_quantized.onnx', 'random_clip_stamp.json',
];

/** FORMAT_VERSION of the script, which it bumps when its output changes. */
function scriptFormatVersion() {
  const match = /^FORMAT_VERSION = (\d+)$/m.exec(readFileSync(SCRIPT, 'utf8'));
  if (!match) throw new Error(`${SCRIPT} has no line FORMAT_VERSION = N`);
  return Number(match[1]);
}

/** Tells whether the folder has every file and a stamp of the script's current version. */
function isComplete() {
  if (!EXPECTED_FILES.every((name) => existsSync(`${RANDOM_CLIP_DIR}${name}`))) return false;
  try {
    const stamp = JSON.parse(readFileSync(`${RANDOM_CLIP_DIR}random_clip_stamp.json`, 'utf8'));
    return stamp.format_version === scriptFormatVersion();
  } catch {
    return false;
  }
}

function checkPython() {
  const probe = spawnSync(PYTHON, ['-c', 'import torch, onnx, numpy'], { encoding: 'utf8' });
  if (probe.error) {
    throw new Error(`cannot run ${PYTHON} (${probe.error.message}); the random CLIP of the ` +
      'benchmarks needs Debian Python 3 with torch and onnx: apt-get install python3-torch python3-onnx');
  }
  if (probe.status !== 0) {
    throw new Error(`${PYTHON} cannot import torch, onnx and numpy: ${probe.stderr.trim().split('\n').pop()}; ` +
      'install them with apt-get install python3-torch python3-onnx');
  }
}

/**
 * Makes the random ViT-B/32 CLIP unless its folder is complete, and returns
 * the folder path (ending in '/'). Progress of the script goes to stderr.
 *
 * @returns {string}
 * @throws {Error} when /usr/bin/python3 lacks torch or onnx, or the script fails
 */
export function ensureRandomClip() {
  if (isComplete()) return RANDOM_CLIP_DIR;
  checkPython();
  process.stderr.write('making the random ViT-B/32 CLIP with models/make_random_clip.py (about a minute)\n');
  const run = spawnSync(PYTHON, [SCRIPT], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (run.status !== 0) {
    throw new Error(`models/make_random_clip.py failed with exit status ${run.status ?? run.signal}`);
  }
  return RANDOM_CLIP_DIR;
}
