/// <reference lib="dom" />
// Line charts drawn as plain SVG (no charting library: the dashboard stays a few kB). Long series
// (a metrics.jsonl of many thousand steps) are drawn as bucket means, at most MAX_DRAWN points, and
// each polyline says in data-n how many points it stands for.
import { h, s } from './dom.js';

export interface Series {
  name: string;
  color: string;
  /** [x, y] in x order; non-finite y values are left out. */
  points: [number, number][];
  /** Draw a dot at each point (short series such as one value per epoch). */
  dots?: boolean;
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  /** y axis on a log scale (losses spanning decades). */
  logY?: boolean;
  /** Digits of the legend's last values. */
  digits?: number;
  /** x takes whole numbers only (epochs): no ticks between them. */
  integerX?: boolean;
}

const W = 640;
const H = 250;
const M = { left: 56, right: 14, top: 12, bottom: 38 };
const MAX_DRAWN = 600;

/** 'Nice' tick positions (1, 2, 5 x 10^k) covering [lo, hi]. */
export function ticks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((st) => raw <= st) ?? 10 * mag;
  const out: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step)
    out.push(Number(t.toPrecision(12)));
  return out;
}

/** Bucket means: at most `max` points, each the mean x and y of consecutive points. */
export function decimate(points: [number, number][], max = MAX_DRAWN): [number, number][] {
  if (points.length <= max) return points;
  const out: [number, number][] = [];
  const per = points.length / max;
  for (let b = 0; b < max; b++) {
    const from = Math.floor(b * per);
    const to = Math.max(from + 1, Math.floor((b + 1) * per));
    let sx = 0;
    let sy = 0;
    for (let i = from; i < to; i++) {
      sx += points[i]![0];
      sy += points[i]![1];
    }
    out.push([sx / (to - from), sy / (to - from)]);
  }
  return out;
}

/** A tick label with as many decimals as the spacing of the ticks needs (13.705, 13.710, ...). */
function tickFormatter(values: number[]): (v: number) => string {
  const step = values.length > 1 ? Math.abs(values[1]! - values[0]!) : Math.abs(values[0] ?? 1) || 1;
  const big = Math.max(...values.map(Math.abs));
  if (big >= 1e5 || (big > 0 && big < 1e-3)) return (v) => (v === 0 ? '0' : v.toExponential(1));
  const decimals = Math.min(6, Math.max(0, Math.ceil(-Math.log10(step) - 1e-9)));
  return (v) => v.toFixed(decimals);
}

export class LineChart {
  readonly el: HTMLElement;
  private readonly svg: SVGSVGElement;
  private readonly legend: HTMLElement;
  private series: Series[] = [];
  private pending = false;

  constructor(private readonly opts: ChartOptions) {
    this.svg = s('svg', {
      viewBox: `0 0 ${W} ${H}`,
      class: 'chart',
      role: 'img',
      'aria-label': opts.title,
    });
    this.legend = h('div', { class: 'legend' });
    this.el = h('figure', { class: 'chart-box' }, h('figcaption', {}, opts.title), this.legend, this.svg);
    this.render();
  }

  /** Replaces the data; redrawn on the next animation frame (many updates in a burst draw once). */
  update(series: Series[]): void {
    this.series = series;
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.render();
    });
  }

  private render(): void {
    const { logY } = this.opts;
    const digits = this.opts.digits ?? 3;
    const fy = (y: number) => (logY ? Math.log10(y) : y);
    const clean = this.series.map((se) => ({
      ...se,
      points: se.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!logY || y > 0)),
    }));
    const all = clean.flatMap((se) => se.points);
    this.svg.replaceChildren();
    this.legend.replaceChildren(
      ...clean.map((se) => {
        const last = se.points[se.points.length - 1];
        return h(
          'span',
          { class: 'key' },
          h('i', { class: 'swatch', 'data-color': se.color }),
          `${se.name}${last ? ` ${last[1].toFixed(digits)}` : ''}`,
        );
      }),
    );
    for (const sw of this.legend.querySelectorAll<HTMLElement>('.swatch')) {
      sw.style.background = sw.dataset.color ?? '';
    }
    const x0 = M.left;
    const x1 = W - M.right;
    const y0 = H - M.bottom;
    const y1 = M.top;
    this.svg.append(s('rect', { x: x0, y: y1, width: x1 - x0, height: y0 - y1, class: 'plot-bg' }));
    if (all.length === 0) {
      this.svg.append(s('text', { x: (x0 + x1) / 2, y: (y0 + y1) / 2, class: 'empty' }, 'no data yet'));
      for (const se of clean)
        this.svg.append(s('polyline', { 'data-series': se.name, 'data-n': 0, points: '' }));
      return;
    }
    let xmin = Math.min(...all.map((p) => p[0]));
    let xmax = Math.max(...all.map((p) => p[0]));
    if (xmax === xmin) {
      xmin -= 1;
      xmax += 1;
    }
    let ymin = Math.min(...all.map((p) => fy(p[1])));
    let ymax = Math.max(...all.map((p) => fy(p[1])));
    if (ymax === ymin) {
      ymin -= logY ? 0.5 : Math.abs(ymin) * 0.1 || 1;
      ymax += logY ? 0.5 : Math.abs(ymax) * 0.1 || 1;
    }
    const pad = (ymax - ymin) * 0.05;
    ymin -= pad;
    ymax += pad;
    const px = (x: number) => x0 + ((x - xmin) / (xmax - xmin)) * (x1 - x0);
    const py = (y: number) => y0 - ((fy(y) - ymin) / (ymax - ymin)) * (y0 - y1);
    // y grid and labels
    const yt = logY
      ? ticks(Math.floor(ymin), Math.ceil(ymax), Math.max(1, Math.ceil(ymax) - Math.floor(ymin)))
          .filter((t) => t >= ymin && t <= ymax)
          .map((t) => 10 ** t)
      : ticks(ymin, ymax);
    const fmtY = logY ? (v: number) => String(Number(v.toPrecision(3))) : tickFormatter(yt);
    for (const t of yt) {
      const y = py(t);
      if (y < y1 - 0.5 || y > y0 + 0.5) continue;
      this.svg.append(
        s('line', { x1: x0, x2: x1, y1: y, y2: y, class: 'grid' }),
        s('text', { x: x0 - 6, y: y + 4, class: 'tick y' }, fmtY(t)),
      );
    }
    let xt = ticks(xmin, xmax, 6);
    if (this.opts.integerX) {
      xt = xt.filter(Number.isInteger);
      if (xt.length < 2) xt = ticks(Math.ceil(xmin), Math.floor(xmax), 1).filter(Number.isInteger);
    }
    const fmtX = tickFormatter(xt);
    for (const t of xt) {
      const x = px(t);
      if (x < x0 - 0.5 || x > x1 + 0.5) continue;
      this.svg.append(
        s('line', { x1: x, x2: x, y1: y0, y2: y0 + 4, class: 'axis' }),
        s('text', { x, y: y0 + 17, class: 'tick x' }, fmtX(t)),
      );
    }
    this.svg.append(
      s('line', { x1: x0, x2: x1, y1: y0, y2: y0, class: 'axis' }),
      s('line', { x1: x0, x2: x0, y1: y1, y2: y0, class: 'axis' }),
      s('text', { x: (x0 + x1) / 2, y: H - 4, class: 'label' }, this.opts.xLabel),
    );
    for (const se of clean) {
      const drawn = decimate(se.points);
      this.svg.append(
        s('polyline', {
          points: drawn.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' '),
          stroke: se.color,
          class: 'line',
          'data-series': se.name,
          'data-n': se.points.length,
        }),
      );
      if (se.dots && drawn.length <= 80) {
        for (const [x, y] of drawn) {
          this.svg.append(s('circle', { cx: px(x).toFixed(1), cy: py(y).toFixed(1), r: 3, fill: se.color }));
        }
      }
    }
  }
}
