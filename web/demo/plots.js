// Small SVG plots of the memory inspector, written as markup strings. Colors
// come from CSS custom properties, so the plots follow the page's theme.

const WIDTH = 360;

/** Escapes text for SVG markup; class names are user input. */
function escapeXml(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function svg(height, body, label) {
  return `<svg viewBox="0 0 ${WIDTH} ${height}" width="100%" role="img" aria-label="${escapeXml(label)}" ` +
    `xmlns="http://www.w3.org/2000/svg">${body}</svg>`;
}

function legend(items, y) {
  return items.map(([name, color], i) => {
    const x = 8 + i * 110;
    return `<rect x="${x}" y="${y - 9}" width="10" height="10" fill="${color}"/>` +
      `<text x="${x + 14}" y="${y}" class="plot-text">${escapeXml(name)}</text>`;
  }).join('');
}

/**
 * Stacked bars, one row a class: one text prototype, the static shots and
 * the dynamic slots.
 *
 * @param {{name:string, static:number, dynamic:number}[]} classes
 * @param {{text:string, static:string, dynamic:string}} names legend labels
 */
export function slotsPlot(classes, names, label) {
  const row = 16;
  const left = 92;
  const top = 22;
  // At least 10 units wide, so that a lone text prototype does not fill the row.
  const max = Math.max(10, ...classes.map((c) => 1 + c.static + c.dynamic));
  const scale = (WIDTH - left - 30) / max;
  const bars = classes.map((entry, i) => {
    const y = top + i * row;
    const parts = [[1, 'var(--plot-text)'], [entry.static, 'var(--plot-static)'], [entry.dynamic, 'var(--plot-dynamic)']];
    let x = left;
    const rects = parts.map(([count, color]) => {
      const width = count * scale;
      const rect = `<rect x="${x.toFixed(1)}" y="${y}" width="${width.toFixed(1)}" height="${row - 4}" fill="${color}"/>`;
      x += width;
      return rect;
    }).join('');
    return `<text x="${left - 4}" y="${y + 10}" text-anchor="end" class="plot-text">${escapeXml(entry.name)}</text>${rects}` +
      `<text x="${(x + 3).toFixed(1)}" y="${y + 10}" class="plot-text">${entry.static}+${entry.dynamic}</text>`;
  }).join('');
  const legendItems = [[names.text, 'var(--plot-text)'], [names.static, 'var(--plot-static)'], [names.dynamic, 'var(--plot-dynamic)']];
  return svg(top + classes.length * row + 4, legend(legendItems, 12) + bars, label);
}

/** Shannon entropy in nats of a probability list. */
export function entropy(probabilities) {
  let sum = 0;
  for (const p of probabilities) if (p > 0) sum -= p * Math.log(p);
  return sum;
}

/**
 * Histogram of prediction entropies from 0 to ln(classCount), in 10 bins.
 */
export function entropyPlot(entropies, classCount, label) {
  const bins = new Array(10).fill(0);
  const max = Math.log(Math.max(2, classCount));
  for (const value of entropies) bins[Math.min(9, Math.floor((value / max) * 10))] += 1;
  const height = 120;
  const bottom = height - 18;
  const peak = Math.max(1, ...bins);
  const width = (WIDTH - 40) / bins.length;
  const bars = bins.map((count, i) => {
    const barHeight = (count / peak) * (bottom - 10);
    const x = 30 + i * width;
    return `<rect x="${x.toFixed(1)}" y="${(bottom - barHeight).toFixed(1)}" width="${(width - 2).toFixed(1)}" ` +
      `height="${barHeight.toFixed(1)}" fill="var(--plot-entropy)"><title>${count}</title></rect>`;
  }).join('');
  const axis = `<line x1="28" y1="${bottom}" x2="${WIDTH - 8}" y2="${bottom}" class="plot-axis"/>` +
    `<text x="30" y="${height - 4}" class="plot-text">0</text>` +
    `<text x="${WIDTH - 10}" y="${height - 4}" text-anchor="end" class="plot-text">ln ${classCount} = ${max.toFixed(2)}</text>` +
    `<text x="24" y="14" text-anchor="end" class="plot-text">${peak}</text>`;
  return svg(height, axis + bars, label);
}

/** Running share of truthy values over a sliding window; null entries are skipped. */
export function rollingShare(values, window = 10) {
  const points = [];
  const recent = [];
  values.forEach((value, i) => {
    if (value === null || value === undefined) return;
    recent.push(value ? 1 : 0);
    if (recent.length > window) recent.shift();
    points.push([i, recent.reduce((a, b) => a + b, 0) / recent.length]);
  });
  return points;
}

/**
 * Lines of agreement (adaptive vs frozen) and accuracy (against known
 * labels) over the classified images, each a running share over 10 images.
 */
export function timelinePlot(history, names, label) {
  const height = 130;
  const bottom = height - 16;
  const top = 22;
  const count = Math.max(2, history.length);
  const x = (i) => 30 + (i / (count - 1)) * (WIDTH - 40);
  const y = (share) => bottom - share * (bottom - top);
  const line = (points, color) => (points.length === 0 ? '' :
    `<polyline fill="none" stroke="${color}" stroke-width="2" points="${points.map(([i, s]) => `${x(i).toFixed(1)},${y(s).toFixed(1)}`).join(' ')}"/>`);
  const axis = `<line x1="28" y1="${bottom}" x2="${WIDTH - 8}" y2="${bottom}" class="plot-axis"/>` +
    `<line x1="28" y1="${top}" x2="${WIDTH - 8}" y2="${top}" class="plot-grid"/>` +
    `<text x="24" y="${top + 4}" text-anchor="end" class="plot-text">1</text>` +
    `<text x="24" y="${bottom}" text-anchor="end" class="plot-text">0</text>` +
    `<text x="${WIDTH - 10}" y="${height - 3}" text-anchor="end" class="plot-text">${history.length}</text>`;
  const agreement = line(rollingShare(history.map((h) => h.agree)), 'var(--plot-dynamic)');
  const accuracy = line(rollingShare(history.map((h) => h.correct)), 'var(--plot-static)');
  const legendItems = [[names.agreement, 'var(--plot-dynamic)'], [names.accuracy, 'var(--plot-static)']];
  return svg(height, legend(legendItems, 12) + axis + agreement + accuracy, label);
}

function formatBytes(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(2)} MB`;
}

/** Draws one bar of bytes used, against the budget when there is one. */
export function bytesPlot(bytes, budget, noBudgetText, label) {
  const full = WIDTH - 16;
  const limit = budget > 0 ? budget : Math.max(bytes, 1);
  const share = Math.min(1, bytes / limit);
  const over = budget > 0 && bytes > budget;
  const caption = budget > 0 ? `${formatBytes(bytes)} / ${formatBytes(budget)} (${Math.round((bytes / budget) * 100)}%)`
    : `${formatBytes(bytes)}, ${noBudgetText}`;
  const body = `<rect x="8" y="8" width="${full}" height="18" class="plot-track"/>` +
    `<rect x="8" y="8" width="${(share * full).toFixed(1)}" height="18" fill="${over ? 'var(--plot-over)' : 'var(--plot-bytes)'}"/>` +
    `<text x="8" y="42" class="plot-text">${escapeXml(caption)}</text>`;
  return svg(48, body, label);
}
