// Test-time views from the WebAssembly core under Node. The same seed gives
// the same bytes in the SIMD, scalar and native builds, checked with a
// checksum shared with tests/cpp/augment_test.cc. View 0 equals plain
// preprocessing, and bad arguments raise typed errors.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { loadCore, Preprocessor } from '../../web/src/core.js';
import { DualmemError } from '../../web/src/errors.js';

const SMALL_CONFIG = JSON.stringify({ size: { shortest_edge: 32 }, crop_size: 32 });
// FNV-1a of the 6 views (seed 42) of the 61x47 test image, as computed by
// the native test MakeViews.ChecksumMatchesWasmConstant.
const NATIVE_CHECKSUM = 0x86b8052797522330n;

// The textured image of tests/cpp/augment_test.cc.
function testImage(width, height, channels) {
  const pixels = new Uint8Array(width * height * channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < channels; c++) {
        pixels[(y * width + x) * channels + c] = ((x * 7 + y * 13 + c * 50) ^ (x * y)) & 255;
      }
    }
  }
  return pixels;
}

function fnv1a(floats) {
  const bytes = new Uint8Array(floats.buffer, floats.byteOffset, floats.byteLength);
  let hash = 0xcbf29ce484222325n;
  for (const byte of bytes) {
    hash = ((hash ^ BigInt(byte)) * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return hash;
}

for (const variant of ['simd', 'scalar']) {
  describe(`runViews, ${variant} build`, () => {
    test('checksum equals the native build', async () => {
      const preprocessor = new Preprocessor(await loadCore({ variant }), SMALL_CONFIG);
      const views = preprocessor.runViews(testImage(61, 47, 3), 61, 47, 3, 6, 42);
      assert.equal(views.length, 6 * 3 * 32 * 32);
      const hash = fnv1a(views);
      assert.equal(hash, NATIVE_CHECKSUM, `got 0x${hash.toString(16)}`);
      preprocessor.dispose();
    });

    test('view 0 equals run()', async () => {
      const preprocessor = new Preprocessor(await loadCore({ variant }), SMALL_CONFIG);
      const pixels = testImage(80, 50, 4);
      const views = preprocessor.runViews(pixels, 80, 50, 4, 3, 11);
      const plain = preprocessor.run(pixels, 80, 50, 4);
      assert.deepEqual(views.subarray(0, plain.length), plain);
      preprocessor.dispose();
    });
  });
}

test('a different seed gives different views', async () => {
  const preprocessor = new Preprocessor(await loadCore(), SMALL_CONFIG);
  const pixels = testImage(61, 47, 3);
  const a = preprocessor.runViews(pixels, 61, 47, 3, 4, 1);
  const b = preprocessor.runViews(pixels, 61, 47, 3, 4, 2);
  const c = preprocessor.runViews(pixels, 61, 47, 3, 4, 1);
  assert.notDeepEqual(a, b);
  assert.deepEqual(a, c);
  preprocessor.dispose();
});

test('bad view count, seed or ranges raise invalid_argument', async () => {
  const preprocessor = new Preprocessor(await loadCore(), SMALL_CONFIG);
  const pixels = testImage(20, 20, 3);
  const expectInvalid = (fn) => assert.throws(fn, (error) =>
    error instanceof DualmemError && error.code === 'invalid_argument' && error.message.length > 0);
  expectInvalid(() => preprocessor.runViews(pixels, 20, 20, 3, 0, 1));
  expectInvalid(() => preprocessor.runViews(pixels, 20, 20, 3, 129, 1));
  expectInvalid(() => preprocessor.runViews(pixels, 20, 20, 3, 2, -1));
  expectInvalid(() => preprocessor.runViews(pixels, 20, 20, 3, 2, 1.5));
  expectInvalid(() => preprocessor.configureViews({ minScale: 0 }));
  expectInvalid(() => preprocessor.configureViews({ minRatio: 2, maxRatio: 1 }));
  expectInvalid(() => preprocessor.configureViews({ flipProbability: 2 }));
  // A failed configureViews keeps the earlier ranges.
  const before = preprocessor.runViews(pixels, 20, 20, 3, 3, 5);
  preprocessor.configureViews({ minScale: 1, maxScale: 1, flipProbability: 0 });
  const full = preprocessor.runViews(pixels, 20, 20, 3, 3, 5);
  assert.notDeepEqual(before, full);
  preprocessor.dispose();
});

test('views per second at 224 x 224 from a 640 x 480 RGBA image', async () => {
  const config = JSON.stringify({ size: { shortest_edge: 224 }, crop_size: 224 });
  for (const variant of ['simd', 'scalar']) {
    const preprocessor = new Preprocessor(await loadCore({ variant }), config);
    const pixels = testImage(640, 480, 4);
    preprocessor.runViews(pixels, 640, 480, 4, 16, 0);
    const rounds = 5;
    const start = performance.now();
    for (let i = 0; i < rounds; i++) preprocessor.runViews(pixels, 640, 480, 4, 16, i);
    const seconds = (performance.now() - start) / 1000;
    console.log(`# ${variant}: ${(rounds * 16 / seconds).toFixed(0)} views/s ` +
      `(${rounds} calls of 16 views, 640x480 RGBA to 224x224)`);
    preprocessor.dispose();
  }
});
