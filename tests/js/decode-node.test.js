// Image decoding under Node with sharp. Odd inputs (EXIF orientation, CMYK,
// 16 bits, gray, palette, alpha, animation, one-pixel lines, broken files)
// give the documented pixels or a typed error. The conformance images meet
// the preprocessing tolerance through the WebAssembly core, and the
// `dualmem preprocess` command writes the same tensor.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, test } from 'node:test';

import { loadCore, Preprocessor } from '../../web/src/core.js';
import { decodeImage, preprocessImageFile } from '../../web/src/decode-node.js';
import { DualmemError } from '../../web/src/errors.js';
import { cmykToRgb } from '../../web/src/image-input.js';
import {
  CLIP_PREPROCESSOR_CONFIG, GOLDEN_IMAGES, PREPROCESS_FIXTURES, compareInPixelUnits,
  formatDeviation, readGolden,
} from './helpers/clip-preprocess.js';

const IMAGES = new URL('../fixtures/images/', import.meta.url);
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

function imagePath(name) {
  return fileURLToPath(new URL(name, IMAGES));
}

function pixelAt(decoded, x, y) {
  const at = (y * decoded.width + x) * decoded.channels;
  return Array.from(decoded.pixels.subarray(at, at + decoded.channels));
}

/** Asserts that every channel of `actual` is within `tolerance` of `expected`. */
function assertPixelNear(actual, expected, tolerance, label) {
  const worst = Math.max(...actual.map((value, c) => Math.abs(value - expected[c])));
  assert.ok(worst <= tolerance,
    `${label}: got [${actual}], expected [${expected}] within ${tolerance}`);
}

async function assertRejects(input, code, messagePattern) {
  await assert.rejects(decodeImage(input), (error) => {
    assert.ok(error instanceof DualmemError, `expected a DualmemError, got ${error}`);
    assert.equal(error.code, code, `code of: ${error.message}`);
    assert.match(error.message, messagePattern);
    return true;
  });
}

describe('decodeImage with sharp', () => {
  // JPEG at quality 95 moves flat red and white by a few levels.
  const JPEG_TOLERANCE = 8;

  for (const orientation of [3, 6, 8]) {
    test(`EXIF orientation ${orientation} puts the red square top-left`, async () => {
      const decoded = await decodeImage(imagePath(`orientation_${orientation}.jpg`));
      assert.deepEqual([decoded.width, decoded.height, decoded.channels], [48, 32, 3]);
      assertPixelNear(pixelAt(decoded, 4, 4), [255, 0, 0], JPEG_TOLERANCE, 'top-left');
      for (const [x, y] of [[43, 4], [4, 27], [43, 27]]) {
        assertPixelNear(pixelAt(decoded, x, y), [255, 255, 255], JPEG_TOLERANCE, `corner ${x},${y}`);
      }
    });
  }

  test('CMYK JPEG converts with the Pillow formula', async () => {
    const decoded = await decodeImage(imagePath('cmyk_80x16.jpg'));
    assert.equal(decoded.channels, 3);
    const patches = {
      white: [255, 255, 255], cyan: [0, 255, 255], magenta: [255, 0, 255],
      yellow: [255, 255, 0], black: [0, 0, 0],
    };
    Object.entries(patches).forEach(([name, rgb], index) => {
      assertPixelNear(pixelAt(decoded, index * 16 + 8, 8), rgb, JPEG_TOLERANCE, name);
    });
  });

  test('cmykToRgb rounds as Pillow', () => {
    // Pillow 9.4 convert('RGB'): (255 - K) - round(C * (255 - K) / 255).
    const rgb = cmykToRgb(new Uint8Array([100, 0, 255, 55, 0, 0, 0, 0, 255, 255, 255, 255]));
    assert.deepEqual(Array.from(rgb), [122, 200, 0, 255, 255, 255, 0, 0, 0]);
  });

  test('16-bit RGB PNG keeps the high byte', async () => {
    const decoded = await decodeImage(imagePath('rgb16_32x8.png'));
    assert.deepEqual([decoded.width, decoded.height, decoded.channels], [32, 8, 3]);
    for (let y = 0; y < 8; y += 1) {
      for (let x = 0; x < 32; x += 1) {
        const expected = [0, 1, 2].map((c) => (x * 8 + c * 60) % 256);
        assert.deepEqual(pixelAt(decoded, x, y), expected, `pixel ${x},${y}`);
      }
    }
  });

  test('16-bit gray PNG keeps the high byte in one channel', async () => {
    const decoded = await decodeImage(imagePath('gray16_32x8.png'));
    assert.deepEqual([decoded.width, decoded.height, decoded.channels], [32, 8, 1]);
    for (let y = 0; y < 8; y += 1) {
      for (let x = 0; x < 32; x += 1) {
        const expected = ((x * 2000 + y * 300) % 65536) >> 8;
        assert.deepEqual(pixelAt(decoded, x, y), [expected], `pixel ${x},${y}`);
      }
    }
  });

  test('gray PNG stays one channel', async () => {
    const decoded = await decodeImage(imagePath('gray_40x24.png'));
    assert.deepEqual([decoded.width, decoded.height, decoded.channels], [40, 24, 1]);
    assert.deepEqual(pixelAt(decoded, 7, 5), [(7 * 6 + 5 * 3) % 256]);
  });

  test('palette PNG expands to RGB', async () => {
    const decoded = await decodeImage(imagePath('palette_40x24.png'));
    assert.deepEqual([decoded.width, decoded.height, decoded.channels], [40, 24, 3]);
    // A 16-colour median-cut palette keeps each colour near its source.
    const source = [39 * 6, 23 * 10, (39 + 23) * 4].map((value) => value % 256);
    assertPixelNear(pixelAt(decoded, 39, 23), source, 40, 'bottom-right');
  });

  test('RGBA PNG drops alpha without compositing', async () => {
    const decoded = await decodeImage(imagePath('rgba_40x24.png'));
    assert.deepEqual([decoded.width, decoded.height, decoded.channels], [40, 24, 3]);
    for (const [x, y] of [[0, 0], [0, 23], [20, 11], [39, 23]]) {
      assert.deepEqual(pixelAt(decoded, x, y), [200, (y * 10) % 256, 50], `pixel ${x},${y}`);
    }
  });

  test('animated GIF gives its red first frame', async () => {
    const decoded = await decodeImage(imagePath('animated_20x12.gif'));
    assert.deepEqual([decoded.width, decoded.height], [20, 12]);
    assert.deepEqual(pixelAt(decoded, 10, 6), [255, 0, 0]);
  });

  test('animated WebP gives its green first frame', async () => {
    const decoded = await decodeImage(imagePath('animated_20x12.webp'));
    assert.deepEqual([decoded.width, decoded.height], [20, 12]);
    assert.deepEqual(pixelAt(decoded, 10, 6), [0, 255, 0]);
  });

  test('Buffer, Uint8Array and ArrayBuffer inputs match the path', async () => {
    const bytes = await readFile(imagePath('rgba_40x24.png'));
    const fromPath = await decodeImage(imagePath('rgba_40x24.png'));
    const copy = new Uint8Array(bytes);
    for (const input of [bytes, copy, copy.buffer]) {
      const decoded = await decodeImage(input);
      assert.deepEqual(decoded.pixels, fromPath.pixels);
    }
  });

  test('empty file is image_not_decodable', async () => {
    await assertRejects(imagePath('empty.png'), 'image_not_decodable', /input is empty \(0 bytes\)/);
  });

  test('truncated PNG is image_not_decodable', async () => {
    await assertRejects(imagePath('truncated.png'), 'image_not_decodable', /truncated or corrupt PNG: \S/);
  });

  test('truncated JPEG is image_not_decodable', async () => {
    await assertRejects(imagePath('truncated.jpg'), 'image_not_decodable', /truncated or corrupt JPEG: \S/);
  });

  test('HTML bytes are image_not_decodable', async () => {
    await assertRejects(imagePath('not_an_image.html'), 'image_not_decodable',
      /not a known image format \(first bytes 3c 21 44 4f/);
  });

  test('SVG is rejected as a format', async () => {
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>');
    await assertRejects(svg, 'image_not_decodable', /format svg is not accepted/);
  });

  test('missing file is not_found', async () => {
    await assertRejects(imagePath('no_such_image.png'), 'not_found', /no_such_image\.png/);
  });

  test('side above 16384 is image_too_large', async () => {
    await assertRejects(imagePath('wide_16385x1.png'), 'image_too_large', /16385 x 1 pixels/);
  });

  test('header-only 20000 x 20000 PNG is rejected before decoding', async () => {
    // The file has almost no pixel data, so image_too_large (not a decode
    // failure) shows that the size was checked from the header.
    await assertRejects(imagePath('header_20000x20000.png'), 'image_too_large', /20000 x 20000/);
  });

  test('area above 64 Mi pixels is image_too_large', async () => {
    await assertRejects(imagePath('header_8193x8193.png'), 'image_too_large', /67125249 pixels/);
  });
});

describe('decoded images through the WebAssembly Preprocessor', () => {
  for (const [name, width, height] of [['wide_300x1.png', 300, 1], ['tall_1x300.png', 1, 300]]) {
    test(`${width} x ${height} image gives 3 x 224 x 224 finite values`, async () => {
      const decoded = await decodeImage(imagePath(name));
      assert.deepEqual([decoded.width, decoded.height], [width, height]);
      const tensor = await preprocessImageFile(await loadCore(), CLIP_PREPROCESSOR_CONFIG, imagePath(name));
      assert.equal(tensor.length, 3 * 224 * 224);
      const bad = tensor.findIndex((value) => !Number.isFinite(value));
      assert.equal(bad, -1, `value ${bad} is ${tensor[bad]}`);
    });
  }

  for (const name of GOLDEN_IMAGES) {
    test(`${name} meets the conformance tolerance`, async (t) => {
      const path = fileURLToPath(new URL(name, PREPROCESS_FIXTURES));
      const tensor = await preprocessImageFile(await loadCore(), CLIP_PREPROCESSOR_CONFIG, path);
      const stats = compareInPixelUnits(tensor, readGolden(name));
      t.diagnostic(`${name}: ${formatDeviation(stats)}`);
      assert.ok(stats.within1 >= 0.99, `${formatDeviation(stats)}; expected 99% within 1/255`);
      assert.equal(stats.beyond3, 0, `${formatDeviation(stats)}; expected none beyond 3/255`);
    });
  }
});

describe('dualmem preprocess command', () => {
  const run = promisify(execFile);
  const cli = join(REPO_ROOT, 'web/bin/dualmem.js');

  test('writes the tensor of preprocessImageFile as little-endian float32', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'dualmem-preprocess-'));
    try {
      const config = join(folder, 'preprocessor_config.json');
      const out = join(folder, 'chelsea.f32');
      const image = fileURLToPath(new URL('chelsea.png', PREPROCESS_FIXTURES));
      await writeFile(config, CLIP_PREPROCESSOR_CONFIG);
      const { stdout } = await run(process.execPath, [cli, 'preprocess', image, '--config', config, '--out', out]);
      assert.match(stdout, /3 x 224 x 224/);

      const bytes = await readFile(out);
      assert.equal(bytes.length, 3 * 224 * 224 * 4);
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const expected = await preprocessImageFile(await loadCore(), CLIP_PREPROCESSOR_CONFIG, image);
      for (let i = 0; i < expected.length; i += 1) {
        if (view.getFloat32(i * 4, true) !== expected[i]) {
          assert.fail(`float ${i}: file has ${view.getFloat32(i * 4, true)}, expected ${expected[i]}`);
        }
      }
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });

  test('exits 2 with the error code for a non-image', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'dualmem-preprocess-'));
    try {
      const config = join(folder, 'preprocessor_config.json');
      await writeFile(config, CLIP_PREPROCESSOR_CONFIG);
      await assert.rejects(
        run(process.execPath, [cli, 'preprocess', imagePath('not_an_image.html'),
          '--config', config, '--out', join(folder, 'out.f32')]),
        (error) => {
          assert.equal(error.code, 2);
          assert.match(error.stderr, /dualmem: image_not_decodable: bytes are not a known image format/);
          return true;
        });
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });

  test('exits 2 when --config is missing', async () => {
    await assert.rejects(run(process.execPath, [cli, 'preprocess', imagePath('gray_40x24.png'), '--out', 'x']),
      (error) => {
        assert.equal(error.code, 2);
        assert.match(error.stderr, /--config is missing/);
        return true;
      });
  });
});

test('Preprocessor accepts every decoded channel count', async () => {
  const core = await loadCore();
  const preprocessor = new Preprocessor(core, CLIP_PREPROCESSOR_CONFIG);
  try {
    for (const name of ['gray_40x24.png', 'rgba_40x24.png', 'cmyk_80x16.jpg', 'gray16_32x8.png']) {
      const { pixels, width, height, channels } = await decodeImage(imagePath(name));
      const tensor = preprocessor.run(pixels, width, height, channels);
      assert.equal(tensor.length, 3 * 224 * 224, name);
    }
  } finally {
    preprocessor.dispose();
  }
});
