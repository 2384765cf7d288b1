// The CLIP tokenizer of the WebAssembly core under Node and through the
// `dualmem tokenize` command.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

import { loadCore, Tokenizer } from '../../web/src/core.js';
import { DualmemError } from '../../web/src/errors.js';

const tokenizerPath = fileURLToPath(
  new URL('../fixtures/clip-tokenizer/tokenizer.json', import.meta.url));
const cases = readFileSync(new URL('../fixtures/tokenizer/clip_cases.jsonl', import.meta.url), 'utf8')
  .split('\n').filter(Boolean).map((line) => JSON.parse(line));
const cli = fileURLToPath(new URL('../../web/bin/dualmem.js', import.meta.url));

const tokenizerJson = readFileSync(tokenizerPath, 'utf8');

for (const variant of ['simd', 'scalar']) {
  test(`every conformance case matches, ${variant} build`, async () => {
    const tokenizer = new Tokenizer(await loadCore({ variant }), tokenizerJson);
    for (const { text, ids } of cases) {
      assert.deepEqual(Array.from(tokenizer.encode(text)), ids, `text ${JSON.stringify(text)}`);
    }
    tokenizer.dispose();
  });
}

test('encodeForModel truncates to 77 and pads with the end token', async () => {
  const tokenizer = new Tokenizer(await loadCore(), tokenizerJson);
  const long = cases.find((c) => c.ids.length > 77);
  const { ids, attentionMask } = tokenizer.encodeForModel(long.text, 77);
  assert.equal(ids.length, 77);
  assert.deepEqual(Array.from(ids.slice(0, 76)), long.ids.slice(0, 76));
  assert.equal(ids[76], 49407);
  assert.ok(attentionMask.every((value) => value === 1));

  const short = tokenizer.encodeForModel('bag', 77);
  assert.deepEqual(Array.from(short.ids.slice(0, 3)), [49406, 3365, 49407]);
  assert.ok(short.ids.slice(3).every((id) => id === 49407), 'pads with 49407');
  assert.equal(short.attentionMask.reduce((a, b) => a + b, 0), 3);
  tokenizer.dispose();
});

test('malformed tokenizer.json is a typed error naming the field', async () => {
  const core = await loadCore();
  const document = JSON.parse(tokenizerJson);
  document.model.merges[12] = 'a b c';
  assert.throws(() => new Tokenizer(core, JSON.stringify(document)), (error) => {
    assert.ok(error instanceof DualmemError);
    assert.equal(error.code, 'invalid_argument');
    assert.match(error.message, /model\.merges\[12\]/);
    return true;
  });
  assert.throws(() => new Tokenizer(core, '{"model": '), { code: 'parse_error' });
});

test('dualmem tokenize writes ids for each JSON line', () => {
  const input = cases.slice(0, 5).map(({ text }) => JSON.stringify({ text })).join('\n');
  const result = spawnSync(process.execPath, [cli, 'tokenize', tokenizerPath], { input });
  assert.equal(result.status, 0, result.stderr.toString());
  const lines = result.stdout.toString().trim().split('\n').map((line) => JSON.parse(line));
  assert.deepEqual(lines.map((line) => line.ids), cases.slice(0, 5).map((c) => c.ids));
});

test('dualmem tokenize rejects a line without text', () => {
  const result = spawnSync(process.execPath, [cli, 'tokenize', tokenizerPath], { input: '{"txt": 1}\n' });
  assert.equal(result.status, 2);
  assert.match(result.stderr.toString(), /line 1: "text" is undefined, expected a string/);
});
