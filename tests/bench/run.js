// `npm run bench`: runs every benchmark, prints its tables and writes
// build/bench/results.json. Timings are ratios of medians measured side by
// side in one run; nothing is asserted.
//
//   node tests/bench/run.js [PART ...]
//
// PART is any of dmn, preprocess, memory, end-to-end, cold-start (default:
// all, in that order). Each part also runs on its own as
// `node tests/bench/PART.js`.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';

const PARTS = {
  dmn: async () => {
    const { benchDmnStep, printDmnStep } = await import('./dmn-step.js');
    return [await benchDmnStep(), printDmnStep];
  },
  preprocess: async () => {
    const { benchPreprocess, printPreprocess } = await import('./preprocess.js');
    return [await benchPreprocess(), printPreprocess];
  },
  memory: async () => {
    const { benchMemory, printMemory } = await import('./memory.js');
    return [await benchMemory(), printMemory];
  },
  'end-to-end': async () => {
    const { benchEndToEnd, printEndToEnd } = await import('./end-to-end.js');
    return [await benchEndToEnd(), printEndToEnd];
  },
  'cold-start': async () => {
    const { benchColdStart, printColdStart } = await import('./cold-start.js');
    return [await benchColdStart(), printColdStart];
  },
};

const TITLES = {
  dmn: 'DMN step',
  preprocess: 'Preprocessing to 3×224×224',
  memory: 'Memory',
  'end-to-end': 'End to end in headless Chromium',
  'cold-start': 'Cold start and DMN share at 1000 classes in headless Chromium',
};

const requested = process.argv.slice(2);
for (const part of requested) {
  if (!(part in PARTS)) {
    console.error(`bench: unknown part "${part}"; expected one of ${Object.keys(PARTS).join(', ')}`);
    process.exit(2);
  }
}
const parts = requested.length > 0 ? requested : Object.keys(PARTS);

function emscriptenVersion() {
  try {
    const text = readFileSync('/usr/share/emscripten/emscripten-version.txt', 'utf8');
    return text.trim().replace(/"/g, '');
  } catch {
    return 'unknown';
  }
}

const machine = {
  cpu: cpus()[0]?.model ?? 'unknown CPU',
  cores: cpus().length,
  memoryGiB: Math.round(totalmem() / 2 ** 30),
  node: process.version,
  emscripten: emscriptenVersion(),
};
const started = new Date();
console.log(`dualmem benchmarks, ${started.toISOString()}`);
console.log(`${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, Node ${machine.node}, ` +
  `Emscripten ${machine.emscripten}\n`);

const results = { date: started.toISOString(), machine, parts: {} };
const outDir = new URL('../../build/bench/', import.meta.url);
mkdirSync(outDir, { recursive: true });
for (const part of parts) {
  const partStart = performance.now();
  console.log(`## ${TITLES[part]}\n`);
  const [result, print] = await PARTS[part]();
  print(result);
  const seconds = (performance.now() - partStart) / 1000;
  console.log(`\n(${part}: ${seconds.toFixed(0)} s)\n`);
  results.parts[part] = { seconds, result };
  // Written after each part, so a later failure keeps what was measured.
  writeFileSync(new URL('results.json', outDir), JSON.stringify(results, null, 2));
}
const total = (Date.now() - started.getTime()) / 1000;
console.log(`total ${(total / 60).toFixed(1)} min; wrote build/bench/results.json`);
