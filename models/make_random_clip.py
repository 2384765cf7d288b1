#!/usr/bin/python3
"""Make a CLIP with the shape of ViT-B/32 and seeded random weights.

The benchmarks time inference, which depends on the shape of the model and
not on what it learned. A random model of the real size replaces the OpenAI weights,
which the build must not download. The folder is in the
Hugging Face / transformers.js layout:

  config.json, preprocessor_config.json, tokenizer files (from tiny-clip)
  onnx/vision_model_quantized.onnx  pixel_values -> image_embeds
  onnx/text_model_quantized.onnx    input_ids, attention_mask -> text_embeds
  onnx/model_quantized.onnx         all three inputs -> logits_per_image,
                                    logits_per_text, text_embeds, image_embeds

The last one is the combined CLIPModel that transformers.js's zero-shot
image classification pipeline loads. All graphs are int8, made by
quantize_dynamic.py, and the float exports are deleted afterwards. A stamp
file written last marks the folder complete, so a second run with the same
settings does nothing.

Usage: make_random_clip.py [--out DIR] [--seed N] [--force]
"""

import argparse
import json
import os
import shutil
import sys
import time

import numpy as np
import onnx
import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from export_onnx import (OPSET, export_text, export_vision,  # noqa: E402
                         preprocessor_config, write_json)
from make_tokenizer import load_clip_tokenizer  # noqa: E402
from quantize_dynamic import quantize_file  # noqa: E402
from tiny_clip import CONTEXT_LENGTH, TinyClip, hf_config  # noqa: E402

DEFAULT_OUT = os.path.join(HERE, '..', 'build', 'bench', 'models',
                           'clip-vit-b32-random')
TOKENIZER_SOURCE = os.path.join(HERE, 'tiny-clip')
TOKENIZER_FILES = ('tokenizer.json', 'tokenizer_config.json',
                   'special_tokens_map.json')

# The layer sizes of OpenAI's CLIP ViT-B/32 (openai/clip-vit-base-patch32).
VIT_B32_CONFIG = {
    'projection_dim': 512,
    'vision': {'hidden_size': 768, 'intermediate_size': 3072,
               'num_attention_heads': 12, 'num_hidden_layers': 12,
               'image_size': 224, 'patch_size': 32},
    'text': {'hidden_size': 512, 'intermediate_size': 2048,
             'num_attention_heads': 8, 'num_hidden_layers': 12},
    'layer_norm_eps': 1e-5,
}

# Bump when the graphs or files this script writes change, so that an
# existing folder made by an older version is rebuilt.
FORMAT_VERSION = 1

STAMP_NAME = 'random_clip_stamp.json'
ONNX_NAMES = ('vision_model', 'text_model', 'model')

# Prompts the text graphs are traced on. They have padding after the end
# token, as inputs at run time do.
TRACE_PROMPTS = ('a photo of a cat.', 'a blurry photo of a red fire truck.')

# Standard deviation of the token and position embeddings, as in CLIP.
EMBEDDING_STD = 0.02


def initialize_tower(tower, width, layers):
    """Draw the weights of one tower from scaled normals, after CLIP's scheme.

    The attention projections and the second MLP layer get a standard
    deviation of width^-0.5 * (2 * layers)^-0.5, so the residual stream keeps
    a similar scale through all 12 blocks, and the first MLP layer gets
    (2 * width)^-0.5. Layer norms start at identity and biases at zero.
    """
    residual_std = width ** -0.5 * (2 * layers) ** -0.5
    for module in tower.modules():
        if isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
    for layer in tower.layers:
        attention = layer.self_attn
        for linear in (attention.q_proj, attention.k_proj, attention.v_proj,
                       attention.out_proj):
            nn.init.normal_(linear.weight, std=residual_std)
        nn.init.normal_(layer.fc1.weight, std=(2 * width) ** -0.5)
        nn.init.normal_(layer.fc2.weight, std=residual_std)


def make_model(seed):
    """Return a TinyClip of ViT-B/32's shape with weights drawn from `seed`."""
    torch.manual_seed(seed)
    model = TinyClip(VIT_B32_CONFIG)
    vision, text = model.vision, model.text
    vision_width = VIT_B32_CONFIG['vision']['hidden_size']
    text_width = VIT_B32_CONFIG['text']['hidden_size']
    with torch.no_grad():
        initialize_tower(vision, vision_width,
                         VIT_B32_CONFIG['vision']['num_hidden_layers'])
        initialize_tower(text, text_width,
                         VIT_B32_CONFIG['text']['num_hidden_layers'])
        patch_fan_in = 3 * VIT_B32_CONFIG['vision']['patch_size'] ** 2
        nn.init.normal_(vision.patch_embedding.weight, std=patch_fan_in ** -0.5)
        nn.init.normal_(vision.class_embedding, std=vision_width ** -0.5)
        nn.init.normal_(vision.position_embedding, std=EMBEDDING_STD)
        nn.init.normal_(vision.visual_projection.weight, std=vision_width ** -0.5)
        nn.init.normal_(text.token_embedding.weight, std=EMBEDDING_STD)
        nn.init.normal_(text.position_embedding, std=EMBEDDING_STD)
        nn.init.normal_(text.text_projection.weight, std=text_width ** -0.5)
    model.eval()
    return model


class CombinedClip(nn.Module):
    """Both towers with the outputs of Hugging Face's CLIPModel.

    text_embeds and image_embeds are L2-normalized, and the logits are the
    cosine similarities times exp(logit_scale).
    """

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, pixel_values):
        text = self.model.text(input_ids, attention_mask)
        image = self.model.vision(pixel_values)
        text = text / text.norm(dim=-1, keepdim=True)
        image = image / image.norm(dim=-1, keepdim=True)
        logits_per_text = self.model.logit_scale.exp() * (text @ image.t())
        return logits_per_text.t(), logits_per_text, text, image


def export_combined(model, path, ids, mask, size):
    pixel_values = torch.zeros(2, 3, size, size)
    torch.onnx.export(
        CombinedClip(model), (ids, mask, pixel_values), path,
        opset_version=OPSET,
        input_names=['input_ids', 'attention_mask', 'pixel_values'],
        output_names=['logits_per_image', 'logits_per_text', 'text_embeds',
                      'image_embeds'],
        dynamic_axes={'input_ids': {0: 'text_batch', 1: 'sequence'},
                      'attention_mask': {0: 'text_batch', 1: 'sequence'},
                      'pixel_values': {0: 'image_batch'},
                      'logits_per_image': {0: 'image_batch', 1: 'text_batch'},
                      'logits_per_text': {0: 'text_batch', 1: 'image_batch'},
                      'text_embeds': {0: 'text_batch'},
                      'image_embeds': {0: 'image_batch'}},
        do_constant_folding=True)


def trace_inputs():
    """Return (ids, mask) int64 [2, 77] for TRACE_PROMPTS."""
    tokenizer = load_clip_tokenizer()
    ids = np.array([tokenizer.encode(t, CONTEXT_LENGTH) for t in TRACE_PROMPTS],
                   dtype=np.int64)
    lengths = (ids != tokenizer.end_id).sum(axis=1) + 1
    mask = np.arange(CONTEXT_LENGTH)[None, :] < lengths[:, None]
    return torch.from_numpy(ids), torch.from_numpy(mask.astype(np.int64))


def expected_stamp(seed):
    return {'format_version': FORMAT_VERSION, 'seed': seed,
            'config': VIT_B32_CONFIG}


def is_complete(out, seed):
    """Tell whether `out` was made by this script version with `seed`."""
    try:
        with open(os.path.join(out, STAMP_NAME)) as f:
            stamp = json.load(f)
    except (OSError, ValueError):
        return False
    names = ['config.json', 'preprocessor_config.json', *TOKENIZER_FILES]
    names += [os.path.join('onnx', f'{n}_quantized.onnx') for n in ONNX_NAMES]
    return (stamp == expected_stamp(seed)
            and all(os.path.isfile(os.path.join(out, n)) for n in names))


def log(start, message):
    print(f'[{time.monotonic() - start:6.1f} s] {message}', file=sys.stderr,
          flush=True)


def make_folder(out, seed):
    start = time.monotonic()
    shutil.rmtree(out, ignore_errors=True)
    onnx_dir = os.path.join(out, 'onnx')
    os.makedirs(onnx_dir)

    model = make_model(seed)
    size = VIT_B32_CONFIG['vision']['image_size']
    ids, mask = trace_inputs()
    log(start, 'made the random model; exporting and quantizing the graphs')
    exporters = {
        'vision_model': lambda path: export_vision(model, path, size),
        'text_model': lambda path: export_text(model, path, ids, mask),
        'model': lambda path: export_combined(model, path, ids, mask, size),
    }

    # Each graph is exported, quantized and its float form deleted before
    # the next one, so the disk never has more than one float graph.
    for name in ONNX_NAMES:
        float_path = os.path.join(onnx_dir, f'{name}.onnx')
        with torch.no_grad():
            exporters[name](float_path)
        counts = quantize_file(float_path,
                               os.path.join(onnx_dir, f'{name}_quantized.onnx'))
        os.remove(float_path)
        log(start, f'{name}_quantized.onnx: ' +
            ', '.join(f'{count} {op}' for op, count in counts.items()))

    write_json(os.path.join(out, 'config.json'),
               hf_config(VIT_B32_CONFIG, model.logit_scale.exp()))
    write_json(os.path.join(out, 'preprocessor_config.json'),
               preprocessor_config(size))
    for name in TOKENIZER_FILES:
        shutil.copyfile(os.path.join(TOKENIZER_SOURCE, name),
                        os.path.join(out, name))

    # The stamp goes last: a run cut short leaves a folder without it,
    # which the next run rebuilds.
    write_json(os.path.join(out, STAMP_NAME), expected_stamp(seed))
    log(start, f'wrote {out}')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default=DEFAULT_OUT,
                        help='output folder (default build/bench/models/'
                             'clip-vit-b32-random)')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the random weights (default 0)')
    parser.add_argument('--force', action='store_true',
                        help='rebuild even when the folder is complete')
    args = parser.parse_args()
    out = os.path.normpath(args.out)
    if not args.force and is_complete(out, args.seed):
        print(f'{out} is up to date', file=sys.stderr)
        return 0
    make_folder(out, args.seed)
    return 0


if __name__ == '__main__':
    sys.exit(main())
