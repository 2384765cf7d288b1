"""CLIP preprocessing with Pillow and numpy, timed by a child process of the bench.

tests/bench/preprocess.js starts this script with the Debian /usr/bin/python3
(python3-pil, python3-numpy) and sends one JSON request per line on stdin.
Each reply is one JSON line on stdout:

  {"op": "load", "path": P, "width": W, "height": H, "config": {...}}
      reads W x H RGBA bytes from P into a PIL Image, once, and keeps the
      preprocessor config (a Hugging Face preprocessor_config.json object);
      replies {"ok": true}
  {"op": "run"}
      preprocesses the loaded image once; replies {"ms": T}, where T is the
      time.perf_counter() interval around the preprocessing only
  {"op": "dump", "path": P}
      writes the float32 CHW output of one preprocessing to P; replies
      {"ok": true}

The first line written is {"ready": true, "pillow": ..., "numpy": ...}. A
failed request replies {"error": message} and the process keeps serving.

The work is what Hugging Face's CLIPImageProcessor does with Pillow, on pixels
that are already decoded. It converts RGBA to RGB inside the timed work,
because the dualmem core also starts from RGBA. It resizes so that the
shortest edge is size.shortest_edge, with Image.BICUBIC and no reducing_gap,
center crops, rescales to float32, normalizes with image_mean and image_std,
and transposes to a contiguous CHW array. The one difference from
CLIPImageProcessor is that the rescale multiplies in float32, whereas the
processor multiplies in float64 and casts to float32. That saves Pillow's
side a little time, and the two results differ by at most one unit in the
last place (checked for all 256 levels).
"""

import json
import sys
import time

import numpy as np
from PIL import Image, __version__ as PILLOW_VERSION

# Pillow's filter number for bicubic, as preprocessor_config.json stores it.
PILLOW_BICUBIC = 3


class ClipPreprocessing:
    """The fields of a preprocessor_config.json that change the output."""

    def __init__(self, config):
        if config.get('resample', PILLOW_BICUBIC) != PILLOW_BICUBIC:
            raise ValueError(f'resample is {config.get("resample")}, expected {PILLOW_BICUBIC} '
                             '(bicubic)')
        self.shortest_edge = int(config['size']['shortest_edge'])
        self.crop_height = int(config['crop_size']['height'])
        self.crop_width = int(config['crop_size']['width'])
        self.rescale = np.float32(config['rescale_factor'])
        self.mean = np.array(config['image_mean'], dtype=np.float32)
        self.std = np.array(config['image_std'], dtype=np.float32)

    def resized_size(self, width, height):
        """Return (width, height) with the shortest edge at shortest_edge, as transformers rounds it."""
        short, long = (width, height) if width <= height else (height, width)
        new_long = int(self.shortest_edge * long / short)
        if width <= height:
            return self.shortest_edge, new_long
        return new_long, self.shortest_edge

    def run(self, image):
        """Return the normalized float32 CHW tensor of an RGBA PIL Image."""
        rgb = image.convert('RGB')
        resized = rgb.resize(self.resized_size(*rgb.size), resample=Image.BICUBIC)

        # Python's floor division places the crop as transformers' center_crop does.
        top = (resized.height - self.crop_height) // 2
        left = (resized.width - self.crop_width) // 2
        pixels = np.asarray(resized)[top:top + self.crop_height, left:left + self.crop_width]

        values = pixels.astype(np.float32) * self.rescale
        values = (values - self.mean) / self.std
        return np.ascontiguousarray(values.transpose(2, 0, 1))


def load_image(path, width, height):
    """Return an RGBA PIL Image of width x height from raw bytes in a file."""
    with open(path, 'rb') as f:
        data = f.read()
    expected = width * height * 4
    if len(data) != expected:
        raise ValueError(f'{path} has {len(data)} bytes, expected {expected} '
                         f'({width} x {height} RGBA)')
    return Image.frombytes('RGBA', (width, height), data)


def serve(lines, reply):
    """Serve requests, one JSON reply each, until stdin closes."""
    image = None
    preprocessing = None
    for line in lines:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
            op = request.get('op')
            if op == 'load':
                image = load_image(request['path'], request['width'], request['height'])
                preprocessing = ClipPreprocessing(request['config'])
                reply({'ok': True})
            elif op in ('run', 'dump') and image is None:
                raise ValueError(f'{op} before load: send a load request first')
            elif op == 'run':
                start = time.perf_counter()
                preprocessing.run(image)
                reply({'ms': (time.perf_counter() - start) * 1000.0})
            elif op == 'dump':
                preprocessing.run(image).tofile(request['path'])
                reply({'ok': True})
            else:
                raise ValueError(f'op is {op!r}, expected "load", "run" or "dump"')
        except Exception as error:  # The bench shows the message; the process keeps serving.
            reply({'error': f'{type(error).__name__}: {error}'})


def main():
    def reply(message):
        sys.stdout.write(json.dumps(message) + '\n')
        sys.stdout.flush()

    reply({'ready': True, 'pillow': PILLOW_VERSION, 'numpy': np.__version__})
    serve(sys.stdin, reply)


if __name__ == '__main__':
    main()
