// Progress of a long command-line run on a stream, usually stderr. On a
// terminal it redraws one line in place. On a pipe or a file it writes a
// plain line every `lineEvery` steps, because carriage returns would clutter
// a log.

const BAR_WIDTH = 30;

// Redraws at most this often on a terminal (ms), because drawing costs more
// than a step of a fast run.
const REDRAW_INTERVAL_MS = 100;

function formatDuration(seconds) {
  if (!Number.isFinite(seconds)) return '?';
  const whole = Math.round(seconds);
  const minutes = Math.floor(whole / 60);
  return minutes > 0 ? `${minutes}m${String(whole % 60).padStart(2, '0')}s` : `${whole}s`;
}

/** A progress display of `done` out of `total` steps. */
export class ProgressBar {
  /**
   * @param {import('node:stream').Writable & {isTTY?: boolean}} stream where to draw
   * @param {number} total number of steps
   * @param {object} [options]
   * @param {string} [options.label] text before the count
   * @param {string} [options.unit] name of a step in the rate, e.g. "img"
   * @param {number} [options.lineEvery] steps between lines when `stream` is
   *   not a terminal; 0 writes none
   * @param {() => number} [options.now] clock in ms, for tests
   */
  constructor(stream, total, options = {}) {
    this.stream = stream;
    this.total = total;
    this.label = options.label ?? '';
    this.unit = options.unit ?? 'step';
    this.lineEvery = options.lineEvery ?? 0;
    this.now = options.now ?? (() => performance.now());
    this.interactive = stream.isTTY === true;
    this.start = this.now();
    this.lastDraw = -Infinity;
    this.done = 0;
  }

  /** Records that `done` steps are finished and redraws when due. */
  update(done) {
    const previous = this.done;
    this.done = done;
    if (this.interactive) {
      const time = this.now();
      if (time - this.lastDraw < REDRAW_INTERVAL_MS && done < this.total) return;
      this.lastDraw = time;
      this.stream.write(`\r${this.#describe(true)}`);
    } else if (this.lineEvery > 0 && Math.floor(done / this.lineEvery) > Math.floor(previous / this.lineEvery)) {
      this.stream.write(`${this.#describe(false)}\n`);
    }
  }

  /** Ends the display: a terminal line is finished with a newline. */
  finish() {
    if (this.interactive) this.stream.write(`\r${this.#describe(true)}\n`);
  }

  #describe(withBar) {
    const elapsed = (this.now() - this.start) / 1000;
    const rate = elapsed > 0 ? this.done / elapsed : 0;
    const fraction = this.total > 0 ? Math.min(1, this.done / this.total) : 1;
    const remaining = rate > 0 ? (this.total - this.done) / rate : Infinity;
    const parts = [];
    if (this.label) parts.push(this.label);
    if (withBar) {
      const filled = Math.round(fraction * BAR_WIDTH);
      parts.push(`[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}]`);
    }
    parts.push(`${this.done}/${this.total}`, `${(100 * fraction).toFixed(1)}%`,
      `${rate.toFixed(1)} ${this.unit}/s`, `eta ${formatDuration(remaining)}`);
    return parts.join(' ');
  }
}
