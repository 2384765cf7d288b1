// `dualmem eval` end to end on a tiny set made from the committed samples:
// it runs, prints every column for every set, and a second run reads the
// embedding cache instead of the image tower.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';

import { modelSkipReason, sampleClasses, SAMPLES_DIR } from './helpers/samples.js';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../../web/bin/dualmem.js', import.meta.url));
const HEADINGS = ['zero-shot', 'DMN zs 1v', 'DMN zs 1v*', 'DMN zs 8v*', 'free 1-shot', 'free 4-shot',
  'free 16-shot', 'trained 4-shot', 'trained 16-shot', 'int8 zs 1v', 'int8 free 16', 'adapt zs 1v',
  'adapt free 16', 'wrong pseudo'];
const SETS = ['clean', 'rotated'];

const skip = modelSkipReason() ?? false;
let root;
let table = null;

// Two sets with the layout of models/make_eval_sets.py; the "rotated" one
// contains the same images, since only the command's plumbing is tested here.
async function makeSets(dir, split) {
  const classes = sampleClasses();
  for (const name of SETS) await cp(fileURLToPath(SAMPLES_DIR), join(dir, name), { recursive: true });
  await writeFile(join(dir, 'manifest.json'), JSON.stringify({ split, classes,
    sets: Object.fromEntries(SETS.map((name) => [name, 'samples'])) }));
}

before(async () => {
  if (skip) return;
  root = await mkdtemp(join(tmpdir(), 'dualmem-eval-'));
  await makeSets(join(root, 'test'), 'test');
  await makeSets(join(root, 'validation'), 'validation');
});

after(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

function evalArgs(...extra) {
  return [CLI, 'eval', '--sets', join(root, 'test'), '--validation-sets', join(root, 'validation'),
    '--cache-dir', join(root, 'cache'), '--limit', '200', '--seeds', '1', '--views-subset', '40', ...extra];
}

test('dualmem eval prints every column for every set and the means', { skip, timeout: 60000 }, async () => {
  const { stdout } = await run(process.execPath, evalArgs(), { maxBuffer: 1 << 20 });
  table = stdout;
  const header = stdout.split('\n')[0];
  for (const heading of HEADINGS) assert.ok(header.includes(heading), `no column ${heading} in ${header}`);
  for (const row of [...SETS, 'mean shifted', 'mean all']) {
    const line = stdout.split('\n').find((l) => l.startsWith(row));
    assert.ok(line, `no row ${row} in\n${stdout}`);
    const cells = line.slice(row.length).trim().split(/\s+/).map(Number);
    assert.equal(cells.length, HEADINGS.length, `row ${row}: ${line}`);
    for (const cell of cells) assert.ok(cell >= 0 && cell <= 100, `row ${row} has ${cell}, expected 0..100`);
  }
  // 20 clean images per class: zero-shot of the embedded model is far above chance.
  const clean = stdout.split('\n').find((l) => l.startsWith('clean')).split(/\s+/).map(Number);
  assert.ok(clean[1] > 60, `clean zero-shot is ${clean[1]}%, expected > 60%`);
});

test('a second dualmem eval reads the cached embeddings and agrees with the table', { skip, timeout: 60000 }, async () => {
  assert.ok(table, 'the first test did not produce a table');
  const files = await readdir(join(root, 'cache'), { recursive: true });
  assert.ok(files.some((f) => f.endsWith('.f32')), `no cache files in ${files}`);
  const result = JSON.parse((await run(process.execPath, evalArgs('--json'))).stdout);
  assert.deepEqual(result.rows.map((r) => r.set), [...SETS, 'mean shifted', 'mean all']);
  for (const row of result.rows) {
    const line = table.split('\n').find((l) => l.startsWith(row.set));
    const cells = line.slice(row.set.length).trim().split(/\s+/);
    result.columns.forEach((column, i) => {
      assert.equal(row.cells[column.key].toFixed(2), cells[i], `${row.set} ${column.heading}`);
    });
  }
});

test('dualmem eval rejects a bad --seeds with bad_option', { skip }, async () => {
  await assert.rejects(run(process.execPath, [CLI, 'eval', '--seeds', '0']), (error) => {
    assert.equal(error.code, 2);
    assert.match(error.stderr, /bad_option: --seeds is "0", expected an integer >= 1/);
    return true;
  });
});
