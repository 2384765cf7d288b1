#!/usr/bin/python3
"""Write the Fashion-MNIST test set as PNG folders, clean and under shifts.

`--out DIR` writes DIR/clean/<class>/<index>.png for all 10,000 t10k images
and DIR/<shift>/<class>/<index>.png for every shift in SHIFTS, plus
DIR/manifest.json with the shift parameters. `<index>` is the image's
position in the t10k file, zero-padded to five digits. Every random shift
draws from its own generator seeded with (SEED, shift number), so a rerun
writes the same bytes.

`--split validation` builds the same sets from the validation split instead:
the last 5,000 Fashion-MNIST training images, which the embedded model never
trained on. There `<index>` is the position in the training file (55000 to
59999) and the generators are seeded with (SEED, shift number, 1), so the
shifts of the two splits are independent draws. dualmem chooses its
defaults on these sets, never on the test sets.

`--samples DIR --per-class N` writes only the first N clean test images of
each class as DIR/<class>/<index>.png (the committed test fixtures).

All images are 28x28 8-bit grayscale PNGs. Uses numpy and Pillow only.
"""

import argparse
import io
import json
import os
import sys

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import fashion_mnist  # noqa: E402

SEED = 2024

# Shift parameters, each in the unit the shift function takes.
NOISE_STD = 40.0          # gray levels of added Gaussian noise (of 255)
BLUR_RADIUS = 1.0         # pixels, Pillow GaussianBlur radius
CONTRAST_FACTOR = 0.35    # Pillow ImageEnhance.Contrast factor (1 = unchanged)
MAX_ROTATION = 25.0       # degrees, uniform in [-MAX_ROTATION, MAX_ROTATION]
MAX_TRANSLATION = 3       # pixels, uniform integer in each axis
PIXELATE_SIZE = 12        # side of the box-downsampled image, then nearest up
JPEG_QUALITY = 10         # Pillow JPEG quality


def gaussian_noise(image, rng):
    noisy = image.astype(np.float32) + rng.normal(0.0, NOISE_STD, image.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def gaussian_blur(image, rng):
    blurred = Image.fromarray(image).filter(ImageFilter.GaussianBlur(BLUR_RADIUS))
    return np.asarray(blurred)


def low_contrast(image, rng):
    enhancer = ImageEnhance.Contrast(Image.fromarray(image))
    return np.asarray(enhancer.enhance(CONTRAST_FACTOR))


def inverted(image, rng):
    return 255 - image


def rotated(image, rng):
    angle = float(rng.uniform(-MAX_ROTATION, MAX_ROTATION))
    dx, dy = (int(v) for v in rng.integers(-MAX_TRANSLATION,
                                           MAX_TRANSLATION + 1, size=2))
    turned = Image.fromarray(image).rotate(angle, resample=Image.BILINEAR,
                                           translate=(dx, dy), fillcolor=0)
    return np.asarray(turned)


def pixelated(image, rng):
    small = Image.fromarray(image).resize((PIXELATE_SIZE, PIXELATE_SIZE),
                                          resample=Image.BOX)
    return np.asarray(small.resize(image.shape[::-1], resample=Image.NEAREST))


def jpeg(image, rng):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format='JPEG', quality=JPEG_QUALITY)
    buffer.seek(0)
    return np.asarray(Image.open(buffer).convert('L'))


# Folder name, function and a description for manifest.json, in the order
# that numbers the generators.
SHIFTS = (
    ('gaussian-noise', gaussian_noise,
     f'added Gaussian noise, std {NOISE_STD} gray levels, clipped to 0..255'),
    ('gaussian-blur', gaussian_blur,
     f'Pillow GaussianBlur, radius {BLUR_RADIUS} px'),
    ('low-contrast', low_contrast,
     f'Pillow ImageEnhance.Contrast, factor {CONTRAST_FACTOR}'),
    ('inverted', inverted, 'gray levels inverted, 255 - x'),
    ('rotated', rotated,
     f'rotated uniformly within +-{MAX_ROTATION} degrees (bilinear) and '
     f'translated by up to {MAX_TRANSLATION} px per axis, black fill'),
    ('pixelated', pixelated,
     f'box-downsampled to {PIXELATE_SIZE}x{PIXELATE_SIZE}, nearest upsampled'),
    ('jpeg', jpeg, f'JPEG round trip at quality {JPEG_QUALITY}'),
)


def write_png(path, image):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(image, mode='L').save(path)


def image_path(root, label, index):
    return os.path.join(root, fashion_mnist.FOLDER_NAMES[label],
                        f'{index:05d}.png')


def write_samples(root, images, labels, per_class):
    """Write the first `per_class` images of each class under root/<class>/."""
    written = 0
    for label in range(len(fashion_mnist.FOLDER_NAMES)):
        for index in np.flatnonzero(labels == label)[:per_class]:
            write_png(image_path(root, label, int(index)), images[index])
            written += 1
    return written


# The last VALIDATION_COUNT training images, held out from model training
# (see models/tiny-clip/README.md).
VALIDATION_COUNT = 5000


def write_eval_sets(root, images, labels, split='test', first_index=0):
    """Write clean/ and one folder per shift, then manifest.json."""
    indices = range(first_index, first_index + len(images))
    for index, image, label in zip(indices, images, labels):
        write_png(image_path(os.path.join(root, 'clean'), label, index), image)

    for number, (name, shift, _) in enumerate(SHIFTS):
        # The test sets keep their original two-part seed, so that they
        # are the same bytes as before the validation split existed.
        key = [SEED, number] if split == 'test' else [SEED, number, 1]
        rng = np.random.default_rng(key)
        for index, image, label in zip(indices, images, labels):
            write_png(image_path(os.path.join(root, name), label, index),
                      shift(image, rng))

    source = ('Fashion-MNIST t10k' if split == 'test' else
              f'Fashion-MNIST train, last {len(images)} images (validation split)')
    manifest = {
        'source': f'{source} (Zalando Research, MIT licence)',
        'split': split,
        'seed': SEED,
        'image_count': len(images),
        'classes': list(fashion_mnist.FOLDER_NAMES),
        'class_names': list(fashion_mnist.CLASS_NAMES),
        'sets': {'clean': 'unchanged test images',
                 **{name: text for name, _, text in SHIFTS}},
    }
    with open(os.path.join(root, 'manifest.json'), 'w') as f:
        json.dump(manifest, f, indent=2)
        f.write('\n')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument('--out', help='folder for clean/ and the shifted sets')
    target.add_argument('--samples', help='folder for clean samples only')
    parser.add_argument('--per-class', type=int, default=20,
                        help='images per class written by --samples')
    parser.add_argument('--data-dir', default=fashion_mnist.DEFAULT_DATA_DIR,
                        help='folder with the Fashion-MNIST idx .gz files')
    parser.add_argument('--split', choices=('test', 'validation'),
                        default='test',
                        help='source images of --out: the 10,000 test images '
                        'or the 5,000 held-out training images')
    args = parser.parse_args()

    if args.split == 'validation':
        if args.samples:
            parser.error('--split validation works with --out only')
        images, labels = fashion_mnist.load_split('train', args.data_dir)
        first = len(images) - VALIDATION_COUNT
        write_eval_sets(args.out, images[first:], labels[first:],
                        'validation', first)
        print(f'wrote {VALIDATION_COUNT} images x {len(SHIFTS) + 1} sets '
              f'to {args.out}')
        return 0
    images, labels = fashion_mnist.load_split('t10k', args.data_dir)
    if args.samples:
        count = write_samples(args.samples, images, labels, args.per_class)
        print(f'wrote {count} clean samples to {args.samples}')
    else:
        write_eval_sets(args.out, images, labels)
        print(f'wrote {len(images)} images x {len(SHIFTS) + 1} sets '
              f'to {args.out}')


if __name__ == '__main__':
    sys.exit(main())
