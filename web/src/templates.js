// Prompt templates that turn a class name into the texts whose CLIP text
// embeddings are averaged into the class embedding. Each template contains
// one `{}`, which the class name replaces.

import { DualmemError } from './errors.js';

/**
 * The 80 prompt templates that Radford et al. ("Learning Transferable Visual
 * Models From Natural Language Supervision", 2021) ensembled for zero-shot
 * ImageNet, in the order of their published list.
 */
export const CLIP_IMAGENET_TEMPLATES = Object.freeze([
  'a bad photo of a {}.',
  'a photo of many {}.',
  'a sculpture of a {}.',
  'a photo of the hard to see {}.',
  'a low resolution photo of the {}.',
  'a rendering of a {}.',
  'graffiti of a {}.',
  'a bad photo of the {}.',
  'a cropped photo of the {}.',
  'a tattoo of a {}.',
  'the embroidered {}.',
  'a photo of a hard to see {}.',
  'a bright photo of a {}.',
  'a photo of a clean {}.',
  'a photo of a dirty {}.',
  'a dark photo of the {}.',
  'a drawing of a {}.',
  'a photo of my {}.',
  'the plastic {}.',
  'a photo of the cool {}.',
  'a close-up photo of a {}.',
  'a black and white photo of the {}.',
  'a painting of the {}.',
  'a painting of a {}.',
  'a pixelated photo of the {}.',
  'a sculpture of the {}.',
  'a bright photo of the {}.',
  'a cropped photo of a {}.',
  'a plastic {}.',
  'a photo of the dirty {}.',
  'a jpeg corrupted photo of a {}.',
  'a blurry photo of the {}.',
  'a photo of the {}.',
  'a good photo of the {}.',
  'a rendering of the {}.',
  'a {} in a video game.',
  'a photo of one {}.',
  'a doodle of a {}.',
  'a close-up photo of the {}.',
  'a photo of a {}.',
  'the origami {}.',
  'the {} in a video game.',
  'a sketch of a {}.',
  'a doodle of the {}.',
  'a origami {}.',
  'a low resolution photo of a {}.',
  'the toy {}.',
  'a rendition of the {}.',
  'a photo of the clean {}.',
  'a photo of a large {}.',
  'a rendition of a {}.',
  'a photo of a nice {}.',
  'a photo of a weird {}.',
  'a blurry photo of a {}.',
  'a cartoon {}.',
  'art of a {}.',
  'a sketch of the {}.',
  'a embroidered {}.',
  'a pixelated photo of a {}.',
  'itap of the {}.',
  'a jpeg corrupted photo of the {}.',
  'a good photo of a {}.',
  'a plushie {}.',
  'a photo of the nice {}.',
  'a photo of the small {}.',
  'a photo of the weird {}.',
  'the cartoon {}.',
  'art of the {}.',
  'a drawing of the {}.',
  'a photo of the large {}.',
  'a black and white photo of a {}.',
  'the plushie {}.',
  'a dark photo of a {}.',
  'itap of a {}.',
  'graffiti of the {}.',
  'a toy {}.',
  'itap of my {}.',
  'a photo of a cool {}.',
  'a photo of a small {}.',
  'a tattoo of the {}.',
]);

/** A short list for quick start-up: seven photo templates. */
export const SIMPLE_TEMPLATES = Object.freeze([
  'a photo of a {}.',
  'a photo of the {}.',
  'a close-up photo of a {}.',
  'a black and white photo of a {}.',
  'a low resolution photo of a {}.',
  'a blurry photo of a {}.',
  'a picture of a {}.',
]);

/** Template sets accepted by name in the `templates` option. */
export const TEMPLATE_SETS = Object.freeze({
  'clip-imagenet': CLIP_IMAGENET_TEMPLATES,
  simple: SIMPLE_TEMPLATES,
});

/**
 * Resolves the `templates` option to a list of templates.
 *
 * @param {string|string[]} templates a name of TEMPLATE_SETS or a list of
 *   strings that each contain `{}`
 * @returns {readonly string[]}
 * @throws {DualmemError} `bad_option` for an unknown name, an empty list or a
 *   template without `{}`
 */
export function resolveTemplates(templates) {
  if (typeof templates === 'string') {
    if (Object.hasOwn(TEMPLATE_SETS, templates)) return TEMPLATE_SETS[templates];
    throw new DualmemError('bad_option',
      `templates is ${JSON.stringify(templates)}, expected ${Object.keys(TEMPLATE_SETS)
        .map((name) => JSON.stringify(name)).join(' or ')} or a list of strings containing "{}"`,
      { option: 'templates', value: templates });
  }
  if (!Array.isArray(templates) || templates.length === 0) {
    throw new DualmemError('bad_option',
      `templates is ${describe(templates)}, expected "clip-imagenet", "simple" or a non-empty ` +
      'list of strings containing "{}"', { option: 'templates' });
  }
  templates.forEach((template, index) => {
    if (typeof template !== 'string' || !template.includes('{}')) {
      throw new DualmemError('bad_option',
        `templates[${index}] is ${describe(template)}, expected a string containing "{}"`,
        { option: 'templates', value: template });
    }
  });
  return Object.freeze([...templates]);
}

/** Fills every template with `className`. */
export function fillTemplates(templates, className) {
  return templates.map((template) => template.replaceAll('{}', className));
}

function describe(value) {
  if (Array.isArray(value)) return value.length === 0 ? 'an empty list' : 'a list';
  return value === undefined ? 'undefined' : JSON.stringify(value) ?? typeof value;
}
