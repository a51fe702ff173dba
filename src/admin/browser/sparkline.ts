import { fixed } from './sample.js';

/** A short history still reads as a line: at least this many points across the width. */
const MIN_SPAN = 15;
const SVG = 'http://www.w3.org/2000/svg';

export function last(list: readonly number[]): number {
  return list[list.length - 1] ?? 0;
}

/**
 * An inline SVG sparkline of the values (newest right); data-points is for tests. A fluid one
 * stretches to its container's width (its strokes do not scale, see the stylesheet).
 */
export function sparkline(
  values: readonly number[],
  width: number,
  height: number,
  className: string,
  fluid = false,
): SVGSVGElement {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('width', fluid ? '100%' : String(width));
  svg.setAttribute('height', String(height));
  if (fluid) svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('class', `spark ${className}`);
  svg.setAttribute('data-points', String(values.length));
  const max = values.reduce((most, v) => (v > most ? v : most), 0);
  const title = document.createElementNS(SVG, 'title');
  title.textContent =
    values.length > 0 ? `last ${fixed(last(values), 1)}, max ${fixed(max, 1)}` : 'no data yet';
  svg.appendChild(title);
  const baseline = document.createElementNS(SVG, 'line');
  baseline.setAttribute('x1', '0');
  baseline.setAttribute('x2', String(width));
  baseline.setAttribute('y1', String(height - 0.5));
  baseline.setAttribute('y2', String(height - 0.5));
  baseline.setAttribute('class', 'baseline');
  svg.appendChild(baseline);
  if (values.length >= 2) {
    // A short history still reads as a line: at least MIN_SPAN points across the width.
    const step = width / (Math.max(values.length, MIN_SPAN) - 1);
    const offset = width - step * (values.length - 1);
    const points = values.map((v, i) => {
      const y = max > 0 ? height - 1 - (v / max) * (height - 3) : height - 1;
      return `${fixed(offset + i * step, 1)},${fixed(y, 1)}`;
    });
    const line = document.createElementNS(SVG, 'polyline');
    line.setAttribute('points', points.join(' '));
    line.setAttribute('class', 'line');
    svg.appendChild(line);
  }
  return svg;
}
