#!/usr/bin/env node
// The dualmem command line. Each subcommand lives in web/cli/<name>.js and
// exports `run(args)`; errors end the process with exit code 2 and a message
// on stderr.

import { DualmemError } from '../src/errors.js';

const COMMANDS = {
  replay: 'replay a dmn-trace/1 JSON file through the WebAssembly core',
  tokenize: 'read JSON lines with "text" on stdin and write them back with "ids"',
  preprocess: 'turn an image into the raw float32 CHW tensor the image encoder reads',
  embed: 'print the CLIP embeddings of images and texts as JSON',
  classify: 'classify a folder of labelled images and report accuracy and speed',
  eval: 'measure top-1 of every mode on the clean and shifted Fashion-MNIST sets',
};

function usage() {
  const lines = Object.entries(COMMANDS).map(([name, help]) => `  ${name.padEnd(12)}${help}`);
  return `usage: dualmem <command> [arguments]\n\ncommands:\n${lines.join('\n')}\n`;
}

async function main(argv) {
  const [name, ...args] = argv;
  if (!name || name === '--help' || name === '-h') {
    process.stdout.write(usage());
    return 0;
  }
  if (!Object.hasOwn(COMMANDS, name)) {
    process.stderr.write(`dualmem: unknown command ${JSON.stringify(name)}\n\n${usage()}`);
    return 2;
  }
  const command = await import(`../cli/${name}.js`);
  return (await command.run(args)) ?? 0;
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  const prefix = error instanceof DualmemError ? `dualmem: ${error.code}: ` : 'dualmem: ';
  process.stderr.write(`${prefix}${error?.message ?? error}\n`);
  process.exitCode = 2;
}
