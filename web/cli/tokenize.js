// `dualmem tokenize TOKENIZER_JSON [--context-length N]`: reads JSON lines
// with a "text" field on stdin and writes each line back with "ids" added.
// Without --context-length the ids are untruncated (start, tokens, end);
// with it they are truncated and padded as the text encoder reads them, and
// "attention_mask" is added too.

import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';

import { loadCore, Tokenizer } from '../src/core.js';
import { DualmemError } from '../src/errors.js';

export async function run(args) {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { 'context-length': { type: 'string' } },
  });
  if (positionals.length !== 1) {
    throw new DualmemError('bad_option',
      `tokenize takes one tokenizer.json path, got ${positionals.length}: ` +
      'usage: dualmem tokenize TOKENIZER_JSON < lines.jsonl');
  }
  let contextLength = null;
  if (values['context-length'] !== undefined) {
    contextLength = Number(values['context-length']);
    if (!Number.isInteger(contextLength) || contextLength < 2) {
      throw new DualmemError('bad_option',
        `--context-length is ${JSON.stringify(values['context-length'])}, expected an integer >= 2`);
    }
  }

  const tokenizer = new Tokenizer(await loadCore(), await readFile(positionals[0], 'utf8'));
  try {
    let lineNumber = 0;
    for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
      lineNumber += 1;
      if (line.trim() === '') continue;
      let record;
      try {
        record = JSON.parse(line);
      } catch (error) {
        throw new DualmemError('parse_error', `stdin line ${lineNumber}: invalid JSON: ${error.message}`);
      }
      if (record === null || typeof record.text !== 'string') {
        throw new DualmemError('invalid_argument',
          `stdin line ${lineNumber}: "text" is ${JSON.stringify(record?.text)}, expected a string`);
      }
      if (contextLength === null) {
        record.ids = Array.from(tokenizer.encode(record.text));
      } else {
        const { ids, attentionMask } = tokenizer.encodeForModel(record.text, contextLength);
        record.ids = Array.from(ids);
        record.attention_mask = Array.from(attentionMask);
      }
      process.stdout.write(`${JSON.stringify(record)}\n`);
    }
  } finally {
    tokenizer.dispose();
  }
  return 0;
}
