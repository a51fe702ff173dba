/**
 * A tiny horizontal bar chart as a standalone SVG string (no dependencies): one row per label,
 * one bar per series in the row, each value printed at the end of its bar. Missing values are
 * drawn as "–". Used for the charts next to docs/benchmarks.md.
 */

export interface BarRow {
  readonly label: string;
  /** One value per series; null when not measured. */
  readonly values: readonly (number | null)[];
}

export interface BarChart {
  readonly title: string;
  /** Unit printed after each value and on the axis, e.g. `µs`. */
  readonly unit: string;
  readonly series: readonly string[];
  readonly rows: readonly BarRow[];
  /** Digits after the decimal point in the printed values (default 1). */
  readonly digits?: number;
  /** A line under the title (e.g. the run and the command). */
  readonly subtitle?: string;
  /**
   * Full bar width stands for this value; a larger value is drawn cut at full width with a break
   * mark (its value is still printed), so that one outlier does not flatten the other bars.
   */
  readonly scaleMax?: number | undefined;
}

const COLORS = ['#3b6ea5', '#e08e2b', '#5aa05a', '#b5485d'];
const FONT = 'font-family="system-ui, -apple-system, Segoe UI, sans-serif"';

function escape(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

function format(value: number, digits: number): string {
  return value.toLocaleString('en-US', {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

export function renderBarChart(chart: BarChart): string {
  const digits = chart.digits ?? 1;
  const width = 760;
  const labelWidth = 190;
  const valueWidth = 110;
  const barHeight = 16;
  const barGap = 3;
  const rowGap = 12;
  const top = chart.subtitle === undefined ? 44 : 62;
  const legend = chart.series.length > 1 ? 24 : 0;
  const plotWidth = width - labelWidth - valueWidth - 20;
  const perRow = chart.series.length * (barHeight + barGap) - barGap + rowGap;
  const height = top + legend + chart.rows.length * perRow + 16;
  let max = 0;
  for (const row of chart.rows) {
    for (const value of row.values)
      if (value !== null && Number.isFinite(value)) max = Math.max(max, value);
  }
  if (chart.scaleMax !== undefined && chart.scaleMax > 0 && chart.scaleMax < max) {
    max = chart.scaleMax;
  }
  if (max <= 0) max = 1;
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escape(chart.title)}">`,
  );
  parts.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  parts.push(
    `<text x="12" y="24" ${FONT} font-size="16" font-weight="600" fill="#222">${escape(chart.title)}</text>`,
  );
  if (chart.subtitle !== undefined) {
    parts.push(
      `<text x="12" y="44" ${FONT} font-size="11" fill="#666">${escape(chart.subtitle)}</text>`,
    );
  }
  if (legend > 0) {
    let x = labelWidth;
    chart.series.forEach((name, i) => {
      parts.push(
        `<rect x="${x}" y="${top}" width="12" height="12" fill="${COLORS[i % COLORS.length]}"/>`,
        `<text x="${x + 16}" y="${top + 10}" ${FONT} font-size="12" fill="#333">${escape(name)}</text>`,
      );
      x += 24 + name.length * 7;
    });
  }
  let y = top + legend;
  for (const row of chart.rows) {
    const rowHeight = perRow - rowGap;
    parts.push(
      `<text x="${labelWidth - 8}" y="${y + rowHeight / 2 + 4}" ${FONT} font-size="12" fill="#222" text-anchor="end">${escape(row.label)}</text>`,
    );
    chart.series.forEach((_, i) => {
      const value = row.values[i] ?? null;
      const by = y + i * (barHeight + barGap);
      const ok = value !== null && Number.isFinite(value);
      const cut = ok && value > max;
      const w = ok ? Math.max(1, (Math.min(value, max) / max) * plotWidth) : 0;
      if (ok) {
        parts.push(
          `<rect x="${labelWidth}" y="${by}" width="${w.toFixed(1)}" height="${barHeight}" fill="${COLORS[i % COLORS.length]}"/>`,
        );
      }
      if (cut) {
        // A white double slash near the end: the bar is cut, not to scale.
        const x = labelWidth + w - 18;
        parts.push(
          `<path d="M${x} ${by + barHeight} l6 ${-barHeight} M${x + 6} ${by + barHeight} l6 ${-barHeight}" stroke="#ffffff" stroke-width="3"/>`,
        );
      }
      parts.push(
        `<text x="${labelWidth + w + 6}" y="${by + barHeight - 4}" ${FONT} font-size="11" fill="#333">${ok ? `${format(value, digits)} ${escape(chart.unit)}` : '–'}</text>`,
      );
    });
    y += perRow;
  }
  parts.push(
    `<line x1="${labelWidth}" y1="${top + legend - 4}" x2="${labelWidth}" y2="${y - rowGap + 4}" stroke="#999" stroke-width="1"/>`,
  );
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
