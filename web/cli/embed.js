// `dualmem embed [--model DIR] (--image FILE... | --text TEXT...) [--fp32]`:
// prints the CLIP embeddings of images and texts as one JSON object. The
// embeddings are the raw `image_embeds` and `text_embeds` outputs of the two
// towers, not scaled to unit length.

import { basename } from 'node:path';
import { parseArgs } from 'node:util';

import { decodeImage } from '../src/decode-node.js';
import { ClipEncoders } from '../src/encoders.js';
import { DualmemError } from '../src/errors.js';

const USAGE = 'usage: dualmem embed [--model DIR] (--image FILE... | --text TEXT...) [--fp32]';

// Images encoded in one vision-tower run.
const IMAGE_BATCH_SIZE = 32;

function parse(args) {
  try {
    return parseArgs({
      args,
      options: {
        model: { type: 'string' },
        image: { type: 'string', multiple: true, default: [] },
        text: { type: 'string', multiple: true, default: [] },
        fp32: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }).values;
  } catch (error) {
    throw new DualmemError('bad_option', `${error.message}; ${USAGE}`);
  }
}

/** Returns the model's name: `_name_or_path` of config.json, else the folder name. */
export function modelName(config, model) {
  if (typeof config._name_or_path === 'string' && config._name_or_path) return config._name_or_path;
  if (model === undefined) return 'tiny-clip';
  return basename(String(model).replace(/[/\\]+$/, ''));
}

export async function run(args) {
  const options = parse(args);
  if (options.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (options.image.length === 0 && options.text.length === 0) {
    throw new DualmemError('bad_option', `embed needs at least one --image or --text; ${USAGE}`);
  }

  const encoders = await ClipEncoders.load(options.model, { quantized: !options.fp32 });
  try {
    const result = {
      model: modelName(encoders.config, options.model),
      precision: options.fp32 ? 'fp32' : 'int8',
      dim: encoders.dim,
    };
    if (options.image.length > 0) {
      result.images = options.image;
      result.image_embeds = [];
      for (let start = 0; start < options.image.length; start += IMAGE_BATCH_SIZE) {
        const paths = options.image.slice(start, start + IMAGE_BATCH_SIZE);
        const decoded = await Promise.all(paths.map((path) => decodeImage(path)));
        const embeddings = await encoders.embedPixelValues(decoded.map((image) => encoders.preprocess(image)));
        for (const embedding of embeddings) result.image_embeds.push(Array.from(embedding));
      }
    }
    if (options.text.length > 0) {
      result.texts = options.text;
      result.text_embeds = (await encoders.embedTexts(options.text)).map((embedding) => Array.from(embedding));
    }
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    await encoders.dispose();
  }
  return 0;
}
