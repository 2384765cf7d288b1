// `dualmem preprocess IMAGE --config PREPROCESSOR_JSON --out FILE [--scalar]`:
// decodes an image with sharp, runs the core's CLIP preprocessing and writes
// the tensor as raw little-endian float32, CHW (3 × crop height × crop width).

import { readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';

import { loadCore, Preprocessor } from '../src/core.js';
import { decodeImage } from '../src/decode-node.js';
import { DualmemError } from '../src/errors.js';

const USAGE = 'usage: dualmem preprocess IMAGE --config PREPROCESSOR_JSON --out FILE [--scalar]';

/** Returns the bytes of `floats` in little-endian order, whatever the host order. */
function littleEndianBytes(floats) {
  const hostIsLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
  if (hostIsLittleEndian) return new Uint8Array(floats.buffer, floats.byteOffset, floats.byteLength);
  const view = new DataView(new ArrayBuffer(floats.byteLength));
  floats.forEach((value, index) => view.setFloat32(index * 4, value, true));
  return new Uint8Array(view.buffer);
}

export async function run(args) {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      config: { type: 'string' },
      out: { type: 'string' },
      scalar: { type: 'boolean', default: false },
    },
  });
  if (positionals.length !== 1) {
    throw new DualmemError('bad_option',
      `preprocess takes one image file, got ${positionals.length}: ${USAGE}`);
  }
  for (const name of ['config', 'out']) {
    if (values[name] === undefined) throw new DualmemError('bad_option', `--${name} is missing: ${USAGE}`);
  }

  let configJson;
  try {
    configJson = await readFile(values.config, 'utf8');
  } catch (error) {
    throw new DualmemError('not_found', `cannot read --config ${values.config}: ${error.message}`);
  }
  const decoded = await decodeImage(positionals[0]);
  const core = await loadCore({ variant: values.scalar ? 'scalar' : 'simd' });
  const preprocessor = new Preprocessor(core, configJson);
  let tensor;
  let shape;
  try {
    tensor = preprocessor.run(decoded.pixels, decoded.width, decoded.height, decoded.channels);
    shape = [3, preprocessor.cropHeight, preprocessor.cropWidth];
  } finally {
    preprocessor.dispose();
  }

  await writeFile(values.out, littleEndianBytes(tensor));
  process.stdout.write(`${values.out}: float32 little-endian CHW ${shape.join(' x ')} ` +
    `from ${decoded.width} x ${decoded.height} pixels, ${decoded.channels} channel(s)\n`);
  return 0;
}
