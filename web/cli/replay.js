// `dualmem replay TRACE.json [--precision float32|float16|int8] [--scalar]`:
// prints the dmn-expected/1 JSON for a dmn-trace/1 trace.

import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';

import { loadCore } from '../src/core.js';
import { DualmemError } from '../src/errors.js';
import { replayTrace } from '../src/replay.js';

export async function run(args) {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      precision: { type: 'string', default: 'float32' },
      scalar: { type: 'boolean', default: false },
    },
  });
  if (positionals.length !== 1) {
    throw new DualmemError('bad_option',
      `replay takes one trace file, got ${positionals.length}: usage: dualmem replay TRACE.json`);
  }
  let trace;
  const text = await readFile(positionals[0], 'utf8');
  try {
    trace = JSON.parse(text);
  } catch (error) {
    throw new DualmemError('parse_error', `${positionals[0]}: invalid JSON: ${error.message}`);
  }
  const core = await loadCore({ variant: values.scalar ? 'scalar' : 'simd' });
  const expected = replayTrace(core, trace, { precision: values.precision });
  process.stdout.write(`${JSON.stringify(expected)}\n`);
  return 0;
}
