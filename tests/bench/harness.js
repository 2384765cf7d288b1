// Side-by-side timing: contenders run in alternation, round after round, so
// drift in machine load hits all of them alike. Reports the median time of
// each and its spread (min and max over rounds); callers print ratios of
// medians measured in the same run. Nothing here asserts a time.

import { performance } from 'node:perf_hooks';

/**
 * Times each contender `rounds` times, alternating.
 *
 * @param {Record<string, () => void>} contenders name -> function doing one unit of work
 * @param {object} [options] `rounds` (default 15), `warmup` rounds (default 2),
 *   `inner` calls per timed sample (default 1)
 * @returns {Record<string, {median:number, min:number, max:number, samples:number[]}>}
 *   milliseconds per call
 */
export function compare(contenders, options = {}) {
  const rounds = options.rounds ?? 15;
  const warmup = options.warmup ?? 2;
  const inner = options.inner ?? 1;
  const names = Object.keys(contenders);
  const samples = Object.fromEntries(names.map((name) => [name, []]));
  for (let round = 0; round < warmup + rounds; round++) {
    // Rotate the starting contender so none always runs first.
    for (let k = 0; k < names.length; k++) {
      const name = names[(round + k) % names.length];
      const start = performance.now();
      for (let i = 0; i < inner; i++) contenders[name]();
      const elapsed = (performance.now() - start) / inner;
      if (round >= warmup) samples[name].push(elapsed);
    }
  }
  return summarize(samples);
}

/**
 * Like `compare`, for contenders that return promises: a timing from another
 * process (a child that times its own work and replies with milliseconds) or
 * work in a browser page. A contender may resolve to a number, taken as its
 * own measured milliseconds instead of the wall time around the call, so the
 * cost of the round trip is left out.
 *
 * @param {Record<string, () => Promise<number|void>>} contenders
 * @param {object} [options] `rounds` (default 15), `warmup` (default 2)
 * @returns {Promise<Record<string, {median:number, min:number, max:number, samples:number[]}>>}
 */
export async function compareAsync(contenders, options = {}) {
  const rounds = options.rounds ?? 15;
  const warmup = options.warmup ?? 2;
  const names = Object.keys(contenders);
  const samples = Object.fromEntries(names.map((name) => [name, []]));
  for (let round = 0; round < warmup + rounds; round++) {
    for (let k = 0; k < names.length; k++) {
      const name = names[(round + k) % names.length];
      const start = performance.now();
      const reported = await contenders[name]();
      const elapsed = typeof reported === 'number' ? reported : performance.now() - start;
      if (round >= warmup) samples[name].push(elapsed);
    }
  }
  return summarize(samples);
}

function summarize(samples) {
  return Object.fromEntries(Object.entries(samples).map(([name, values]) => {
    const sorted = [...values].sort((a, b) => a - b);
    return [name, {
      median: sorted[Math.floor(sorted.length / 2)],
      min: sorted[0],
      max: sorted[sorted.length - 1],
      samples: values,
    }];
  }));
}

/** Formats one timing as "12.3 ms (11.9–13.0)". */
export function formatTiming({ median, min, max }) {
  const digits = median < 1 ? 3 : 1;
  return `${median.toFixed(digits)} ms (${min.toFixed(digits)}–${max.toFixed(digits)})`;
}

/** Prints a table of rows (arrays of cells) with a header. */
export function printTable(header, rows) {
  const widths = header.map((cell, i) => Math.max(cell.length, ...rows.map((row) => String(row[i]).length)));
  const line = (cells) => `| ${cells.map((cell, i) => String(cell).padEnd(widths[i])).join(' | ')} |`;
  console.log(line(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const row of rows) console.log(line(row));
}
