#!/usr/bin/python3
"""Export the trained tiny CLIP to ONNX and write its Hugging Face files.

Reads models/cache/tiny_clip.pt (from train_tiny_clip.py) and writes into
--out (default models/tiny-clip):
  onnx/vision_model.onnx  pixel_values [batch, 3, H, W] -> image_embeds
  onnx/text_model.onnx    input_ids, attention_mask [batch, sequence] -> text_embeds
  config.json, preprocessor_config.json and the tokenizer files.
Embeddings are the unnormalized projections, as in Hugging Face's
CLIPVisionModelWithProjection and CLIPTextModelWithProjection.

It also writes the inputs of eval_onnx.mjs under --cache. These are the test
images resized to the model's input size, their labels and the zero-shot
prompt token ids. Torch's embeddings of the first images and of the prompts
are saved as a reference for the exported graphs.

Usage: export_onnx.py [--checkpoint PATH] [--out DIR] [--cache DIR]
"""

import argparse
import json
import os
import subprocess
import sys

import numpy as np
import onnx
import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import fashion_mnist  # noqa: E402
import prompts  # noqa: E402
from make_tokenizer import load_clip_tokenizer  # noqa: E402
from tiny_clip import CONTEXT_LENGTH, TinyClip, hf_config  # noqa: E402

OPSET = 14

# Test images whose torch embeddings are saved as a reference.
REFERENCE_COUNT = 64


class TextModel(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.text = model.text

    def forward(self, input_ids, attention_mask):
        return self.text(input_ids, attention_mask)


def export_vision(model, path, size):
    pixel_values = torch.zeros(2, 3, size, size)
    torch.onnx.export(model.vision, (pixel_values,), path, opset_version=OPSET,
                      input_names=['pixel_values'],
                      output_names=['image_embeds'],
                      dynamic_axes={'pixel_values': {0: 'batch'},
                                    'image_embeds': {0: 'batch'}},
                      do_constant_folding=True)


def export_text(model, path, ids, mask):
    torch.onnx.export(TextModel(model), (ids, mask), path, opset_version=OPSET,
                      input_names=['input_ids', 'attention_mask'],
                      output_names=['text_embeds'],
                      dynamic_axes={'input_ids': {0: 'batch', 1: 'sequence'},
                                    'attention_mask': {0: 'batch',
                                                       1: 'sequence'},
                                    'text_embeds': {0: 'batch'}},
                      do_constant_folding=True)


def preprocessor_config(size):
    """Return preprocessor_config.json of a CLIPImageProcessor for `size`."""
    return {
        'image_processor_type': 'CLIPImageProcessor',
        'do_convert_rgb': True,
        'do_resize': True,
        'size': {'shortest_edge': size},
        'resample': 3,
        'do_center_crop': True,
        'crop_size': {'height': size, 'width': size},
        'do_rescale': True,
        'rescale_factor': 1 / 255,
        'do_normalize': True,
        'image_mean': list(fashion_mnist.CLIP_MEAN),
        'image_std': list(fashion_mnist.CLIP_STD),
    }


def write_json(path, value):
    with open(path, 'w') as f:
        json.dump(value, f, indent=2)
        f.write('\n')


def prompt_inputs(tokenizer):
    """Return (ids, mask) int64 [classes * templates, 77] for zero-shot prompts."""
    texts = [p for name in fashion_mnist.FOLDER_NAMES
             for p in prompts.zero_shot_prompts(name)]
    ids = np.array([tokenizer.encode(t, CONTEXT_LENGTH) for t in texts],
                   dtype=np.int64)
    lengths = (ids != tokenizer.end_id).sum(axis=1) + 1
    mask = (np.arange(CONTEXT_LENGTH)[None, :] < lengths[:, None])
    return ids, mask.astype(np.int64)


def write_eval_inputs(cache, model, size, tokenizer):
    """Write the raw inputs and torch reference outputs for eval_onnx.mjs."""
    images, labels = fashion_mnist.load_split('t10k')
    resized = fashion_mnist.resize_bicubic(images, size)
    ids, mask = prompt_inputs(tokenizer)
    with torch.no_grad():
        image_ref = model.vision(torch.from_numpy(
            fashion_mnist.normalize(resized[:REFERENCE_COUNT]))).numpy()
        text_ref = model.text(torch.from_numpy(ids),
                              torch.from_numpy(mask)).numpy()

    files = {'test_images_u8.bin': resized, 'test_labels_u8.bin': labels,
             'prompt_ids_i64.bin': ids, 'prompt_mask_i64.bin': mask,
             'image_embeds_ref_f32.bin': image_ref.astype(np.float32),
             'text_embeds_ref_f32.bin': text_ref.astype(np.float32)}
    for name, array in files.items():
        np.ascontiguousarray(array).tofile(os.path.join(cache, name))
    write_json(os.path.join(cache, 'eval_inputs.json'), {
        'image_size': size, 'image_count': len(images),
        'reference_count': REFERENCE_COUNT,
        'classes': list(fashion_mnist.FOLDER_NAMES),
        'templates': list(prompts.TEMPLATES),
        'context_length': CONTEXT_LENGTH,
        'mean': list(fashion_mnist.CLIP_MEAN),
        'std': list(fashion_mnist.CLIP_STD),
        'projection_dim': int(image_ref.shape[1]),
    })


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--checkpoint',
                        default=os.path.join(HERE, 'cache', 'tiny_clip.pt'))
    parser.add_argument('--out', default=os.path.join(HERE, 'tiny-clip'))
    parser.add_argument('--cache', default=os.path.join(HERE, 'cache'))
    args = parser.parse_args()

    saved = torch.load(args.checkpoint)
    model = TinyClip(saved['config'])
    model.load_state_dict(saved['state_dict'])
    model.eval()
    size = saved['config']['vision']['image_size']
    onnx_dir = os.path.join(args.out, 'onnx')
    os.makedirs(onnx_dir, exist_ok=True)
    tokenizer = load_clip_tokenizer()

    # The text graph is traced on real prompts, which have padding after
    # the end token, as inputs at run time do.
    vision_path = os.path.join(onnx_dir, 'vision_model.onnx')
    text_path = os.path.join(onnx_dir, 'text_model.onnx')
    ids, mask = prompt_inputs(tokenizer)
    with torch.no_grad():
        export_vision(model, vision_path, size)
        export_text(model, text_path, torch.from_numpy(ids[:2]),
                    torch.from_numpy(mask[:2]))
    for path in (vision_path, text_path):
        onnx.checker.check_model(onnx.load(path), full_check=True)

    # Hugging Face files next to the graphs.
    write_json(os.path.join(args.out, 'config.json'),
               hf_config(saved['config'], model.logit_scale.exp()))
    write_json(os.path.join(args.out, 'preprocessor_config.json'),
               preprocessor_config(size))
    subprocess.run([sys.executable, os.path.join(HERE, 'make_tokenizer.py'),
                    '--out', args.out], check=True)

    os.makedirs(args.cache, exist_ok=True)
    write_eval_inputs(args.cache, model, size, tokenizer)
    print(f'exported {vision_path} and {text_path}')


if __name__ == '__main__':
    sys.exit(main())
