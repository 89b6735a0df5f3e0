// Plots for the comparison report: vega-lite specs rendered headless (no canvas, no browser) to SVG by
// vega's 'none' renderer, then to PNG by sharp (librsvg, which draws the text with the system fonts).
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import type { TopLevelSpec } from 'vega-lite';

/** One rendered plot: `svg` is the markup (to inline), the paths are where its two files were written. */
export interface Plot {
  name: string;
  svg: string;
  svgPath: string;
  pngPath: string;
}

/** Input of one series on the epoch plots. */
export interface EpochSeries {
  run: string;
  points: { epoch: number; value: number }[];
}

/** Input of one run's loss plot. */
export interface LossRow {
  step: number;
  g_gan: number;
  g_l1: number;
  d_loss: number;
}

/** PNG pixels per SVG pixel (72 dpi is 1:1 for librsvg). */
const PNG_DENSITY = 144;
/** Loss curves with more steps than this are averaged over consecutive steps. */
const MAX_LOSS_POINTS = 400;

const CONFIG = {
  background: 'white',
  font: 'DejaVu Sans, Liberation Sans, Arial, Helvetica, sans-serif',
  title: { fontSize: 14 },
  axis: { labelFontSize: 11, titleFontSize: 12 },
  legend: { labelFontSize: 11, titleFontSize: 12, labelLimit: 260 },
} as const;

/** Line plot of one metric per epoch, one colored line per run; non-finite values are left out. */
export function epochSpec(title: string, yTitle: string, series: EpochSeries[]): TopLevelSpec {
  const values = series.flatMap((s) =>
    s.points
      .filter((p) => Number.isFinite(p.value))
      .map((p) => ({ run: s.run, epoch: p.epoch, value: p.value })),
  );
  return {
    title,
    width: 520,
    height: 280,
    data: { values },
    mark: { type: 'line', point: true, strokeWidth: 2 },
    encoding: {
      x: { field: 'epoch', type: 'quantitative', title: 'epoch', axis: { tickMinStep: 1, format: 'd' } },
      y: { field: 'value', type: 'quantitative', title: yTitle, scale: { zero: false } },
      color: { field: 'run', type: 'nominal', title: 'run', sort: series.map((s) => s.run) },
    },
    config: CONFIG,
  };
}

/**
 * Averages consecutive rows so that at most `maxPoints` remain (each one the mean of its bucket), and
 * says how many steps each point stands for. Non-finite losses are left out of the means.
 */
export function downsampleLosses(
  rows: LossRow[],
  maxPoints = MAX_LOSS_POINTS,
): { rows: LossRow[]; per: number } {
  if (rows.length <= maxPoints) return { rows, per: 1 };
  const per = Math.ceil(rows.length / maxPoints);
  const out: LossRow[] = [];
  for (let i = 0; i < rows.length; i += per) {
    const chunk = rows.slice(i, i + per);
    const mean = (k: keyof LossRow) => {
      const v = chunk.map((r) => r[k]).filter(Number.isFinite);
      return v.length ? v.reduce((a, b) => a + b, 0) / v.length : Number.NaN;
    };
    out.push({ step: mean('step'), g_gan: mean('g_gan'), g_l1: mean('g_l1'), d_loss: mean('d_loss') });
  }
  return { rows: out, per };
}

export const LOSS_SERIES = [
  { key: 'g_gan', label: 'G GAN' },
  { key: 'g_l1', label: 'G L1' },
  { key: 'd_loss', label: 'D' },
] as const;

/** Points in the moving average of a loss curve of `n` points (1: no smoothing). */
export function smoothingWindow(n: number): number {
  return n < 20 ? 1 : Math.max(2, Math.round(n / 25));
}

/**
 * One run's losses: a small panel per loss (G GAN, G L1, D) against the step, each with its own y axis;
 * the logged points faint, their trailing moving average over `window` points solid.
 */
export function lossSpec(
  title: string,
  rows: LossRow[],
  window = smoothingWindow(rows.length),
): TopLevelSpec {
  const values = rows.flatMap((r) =>
    LOSS_SERIES.filter((s) => Number.isFinite(r[s.key])).map((s) => ({
      step: r.step,
      loss: s.label,
      value: r[s.key],
    })),
  );
  const labels = LOSS_SERIES.map((s) => s.label);
  const x = { field: 'step', type: 'quantitative', title: 'step', axis: { tickCount: 4 } } as const;
  const color = { field: 'loss', type: 'nominal', sort: labels, legend: null } as const;
  return {
    title,
    data: { values },
    transform: [
      {
        window: [{ op: 'mean', field: 'value', as: 'smooth' }],
        frame: [-(window - 1), 0],
        groupby: ['loss'],
        sort: [{ field: 'step' }],
      },
    ],
    facet: {
      column: { field: 'loss', type: 'nominal', title: null, sort: labels, header: { labelFontSize: 12 } },
    },
    spec: {
      width: 230,
      height: 160,
      layer: [
        {
          mark: { type: 'line', strokeWidth: 1, opacity: window > 1 ? 0.3 : 1, clip: true },
          encoding: {
            x,
            y: { field: 'value', type: 'quantitative', title: 'loss', scale: { zero: false } },
            color,
          },
        },
        ...(window > 1
          ? [
              {
                mark: { type: 'line', strokeWidth: 2, clip: true },
                encoding: { x, y: { field: 'smooth', type: 'quantitative' }, color },
              } as const,
            ]
          : []),
      ],
    },
    resolve: { scale: { y: 'independent', x: 'independent' } },
    config: CONFIG,
  };
}

/**
 * Renders a vega-lite spec to SVG markup, headless. vega is loaded here, on the first plot: it takes
 * ~0.9 s to import, which every CLI command (all import this module through compare) would pay.
 */
export async function specToSvg(spec: TopLevelSpec): Promise<string> {
  const [vega, { compile }] = await Promise.all([import('vega'), import('vega-lite')]);
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/**
 * Gives every id in an SVG (clip paths, gradients) a prefix, so that several SVGs inlined in one HTML
 * page do not take each other's definitions.
 */
export function prefixSvgIds(svg: string, prefix: string): string {
  return svg
    .replace(/\sid="([^"]+)"/g, (_m, id: string) => ` id="${prefix}${id}"`)
    .replace(/url\(#([^)]+)\)/g, (_m, id: string) => `url(#${prefix}${id})`)
    .replace(
      /(\s(?:xlink:)?href)="#([^"]+)"/g,
      (_m, attr: string, id: string) => `${attr}="#${prefix}${id}"`,
    );
}

/** Renders `spec` and writes `dir/NAME.svg` and `dir/NAME.png`. */
export async function writePlot(dir: string, name: string, spec: TopLevelSpec): Promise<Plot> {
  await mkdir(dir, { recursive: true });
  const svg = prefixSvgIds(await specToSvg(spec), `${name}-`);
  const svgPath = join(dir, `${name}.svg`);
  const pngPath = join(dir, `${name}.png`);
  await writeFile(svgPath, svg);
  await sharp(Buffer.from(svg), { density: PNG_DENSITY }).png().toFile(pngPath);
  return { name, svg, svgPath, pngPath };
}
