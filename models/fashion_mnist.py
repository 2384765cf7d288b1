"""Read Fashion-MNIST and preprocess it the way the CLIP image processor does.

Uses numpy and Pillow only, so that the evaluation-set builder runs without
torch. The data comes from the Debian package `dataset-fashion-mnist`.
"""

import gzip
import os

import numpy as np
from PIL import Image

DEFAULT_DATA_DIR = '/usr/share/datasets/fashion-mnist'

# Zalando's class names, in label order, as the Hugging Face dataset card
# writes them.
CLASS_NAMES = ('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat',
               'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot')

# Folder-safe names, in label order. They are also the class names the
# prompts use at evaluation time.
FOLDER_NAMES = ('t-shirt', 'trouser', 'pullover', 'dress', 'coat',
                'sandal', 'shirt', 'sneaker', 'bag', 'ankle boot')

# The last VALIDATION_SIZE images of the 60k training file form the
# validation split, which training never sees.
VALIDATION_SIZE = 5000

# CLIP's per-channel normalization (OpenAI CLIP, also in the Hugging Face
# CLIPImageProcessor defaults).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

_IDX_IMAGE_MAGIC = 2051
_IDX_LABEL_MAGIC = 2049


def _read_idx(path, expected_magic):
    with gzip.open(path, 'rb') as f:
        data = f.read()
    magic = int.from_bytes(data[0:4], 'big')
    if magic != expected_magic:
        raise ValueError(f'{path}: idx magic is {magic}, '
                         f'expected {expected_magic}')
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], 'big')
             for i in range(dims)]
    array = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims)
    if array.size != int(np.prod(shape)):
        raise ValueError(f'{path}: {array.size} values after the header, '
                         f'expected {int(np.prod(shape))} for shape {shape}')
    return array.reshape(shape)


def load_split(name, data_dir=DEFAULT_DATA_DIR):
    """Return (images uint8 [N, 28, 28], labels uint8 [N]) for 'train' or 't10k'."""
    if name not in ('train', 't10k'):
        raise ValueError(f'split {name!r} is unknown, expected train or t10k')
    images = _read_idx(os.path.join(data_dir, f'{name}-images-idx3-ubyte.gz'),
                       _IDX_IMAGE_MAGIC)
    labels = _read_idx(os.path.join(data_dir, f'{name}-labels-idx1-ubyte.gz'),
                       _IDX_LABEL_MAGIC)
    if len(images) != len(labels):
        raise ValueError(f'{name}: {len(images)} images but '
                         f'{len(labels)} labels')
    return images, labels


def resize_bicubic(images, size):
    """Resize gray uint8 images [N, h, w] to [N, size, size] with Pillow bicubic.

    Matches CLIPImageProcessor on a square image: the shortest edge becomes
    `size`, so the center crop keeps everything. Converting gray to RGB only
    copies the channel, so resizing the gray image gives the same bytes.
    """
    out = np.empty((len(images), size, size), dtype=np.uint8)
    for i, image in enumerate(images):
        resized = Image.fromarray(image, mode='L').resize(
            (size, size), resample=Image.BICUBIC)
        out[i] = np.asarray(resized)
    return out


def normalize(resized):
    """Turn uint8 [N, s, s] gray images into float32 [N, 3, s, s] CLIP input."""
    mean = np.asarray(CLIP_MEAN, dtype=np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(CLIP_STD, dtype=np.float32).reshape(1, 3, 1, 1)
    scaled = resized.astype(np.float32)[:, None, :, :] / 255.0
    return (scaled - mean) / std
