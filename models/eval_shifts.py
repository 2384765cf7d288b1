#!/usr/bin/python3
"""Measure zero-shot top-1 of the torch checkpoint on each evaluation set.

Reads the PNG folders that make_eval_sets.py writes (DIR/<set>/<class>/*.png),
preprocesses each image as CLIPImageProcessor does (Pillow bicubic to the
model's input size, CLIP normalization) and prints one JSON line per set.

Usage: eval_shifts.py [--sets models/cache/eval-sets] [--checkpoint PATH]
"""

import argparse
import glob
import json
import os
import sys

import numpy as np
import torch
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import fashion_mnist  # noqa: E402
import prompts  # noqa: E402
from make_tokenizer import load_clip_tokenizer  # noqa: E402
from tiny_clip import TinyClip  # noqa: E402
from train_tiny_clip import tokenize_all, zero_shot_accuracy  # noqa: E402


def load_set(folder):
    """Return (uint8 images [N, 28, 28], labels [N]) of one evaluation set."""
    images, labels = [], []
    for label, name in enumerate(fashion_mnist.FOLDER_NAMES):
        for path in sorted(glob.glob(os.path.join(folder, name, '*.png'))):
            images.append(np.asarray(Image.open(path).convert('L')))
            labels.append(label)
    return np.stack(images), np.array(labels)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sets', default=os.path.join(HERE, 'cache', 'eval-sets'))
    parser.add_argument('--checkpoint',
                        default=os.path.join(HERE, 'cache', 'tiny_clip.pt'))
    args = parser.parse_args()

    saved = torch.load(args.checkpoint)
    model = TinyClip(saved['config'])
    model.load_state_dict(saved['state_dict'])
    size = saved['config']['vision']['image_size']

    ids, mask = tokenize_all(load_clip_tokenizer(), [
        p for name in fashion_mnist.FOLDER_NAMES
        for p in prompts.zero_shot_prompts(name)])
    shape = (len(fashion_mnist.FOLDER_NAMES), len(prompts.TEMPLATES), -1)
    ids = torch.from_numpy(ids).reshape(shape)
    mask = torch.from_numpy(mask).reshape(shape)

    with open(os.path.join(args.sets, 'manifest.json')) as f:
        names = list(json.load(f)['sets'])
    for name in names:
        images, labels = load_set(os.path.join(args.sets, name))
        resized = fashion_mnist.resize_bicubic(images, size)
        accuracy = zero_shot_accuracy(model, resized, labels, ids, mask)
        print(json.dumps({'set': name, 'images': len(labels),
                          'zero_shot_top1': accuracy}), flush=True)


if __name__ == '__main__':
    sys.exit(main())
