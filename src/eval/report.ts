// The report of `pix2pix compare`: report.html (self-contained: inline SVG plots, grid PNGs as data URIs,
// no script, no external file) and report.md (links to plots/*.png and the grid PNGs), from the runs' data.
// Its sections are built once as blocks (document.ts) and rendered to both files.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { bestByPsnr, type EvalRow, type MetricsRow } from '../run/records.js';
import { fmtDuration, fmtNum } from '../util/format.js';
import { type Block, type Column, renderHtml, renderMarkdown } from './document.js';
import type { evalModeName } from './evaluate.js';
import {
  downsampleLosses,
  type EpochSeries,
  epochSpec,
  lossSpec,
  type Plot,
  smoothingWindow,
  writePlot,
} from './plots.js';

export type { EvalRow };

export interface RunReport {
  /** e.g. "batch-size=32" */
  name: string;
  /** The varied options of this run, e.g. { 'batch-size': 32 }. */
  values: Record<string, string | number | boolean>;
  /** Run folder, relative to the report's folder. */
  dir: string;
  /** metrics.jsonl lines. */
  steps: MetricsRow[];
  /** eval.csv rows, sorted by epoch. */
  evals: EvalRow[];
  /** The row with the highest PSNR (worked out from `evals` where absent). */
  best?: EvalRow;
  /** Wall time spent training (not evaluating). */
  trainSeconds: number;
  /** Training throughput. */
  imagesPerSec: number;
  /** A cell of a queued comparison that has not finished: what it is doing instead (e.g. "waiting"). */
  status?: string;
}

/** `png`: path relative to the report's folder; columns input | ground truth | each run's output. */
export interface GridReport {
  title: string;
  caption: string;
  png: string;
}

export interface CompareReport {
  title: string;
  /** Dataset path and a few facts, shown as text. */
  dataset: string;
  /** The command line that produced it. */
  command: string;
  evalMode: ReturnType<typeof evalModeName>;
  /** The options common to all runs. */
  settings: Record<string, string | number | boolean>;
  runs: RunReport[];
  grids: GridReport[];
}

/** What 20*log10(255) adds to a PSNR computed with MAX = 255 on images in [0, 1]. */
export const PSNR_RANGE_OFFSET_DB = 20 * Math.log10(255);

// ---------------------------------------------------------------------------------------------------------
// Formatting

export { escapeHtml } from './document.js';
export { fmtDuration };

export const fmtPsnr = (x: number): string => fmtNum(x, 2);
export const fmtSsim = (x: number): string => fmtNum(x, 4);
export const fmtMae = (x: number): string => fmtNum(x, Number.isFinite(x) && Math.abs(x) >= 1 ? 2 : 4);

const fmtRate = (x: number): string => (Number.isFinite(x) && x > 0 ? x.toFixed(1) : '–');

const fmtValue = (v: string | number | boolean): string => String(v);

const fmtValues = (values: Record<string, string | number | boolean>): string =>
  Object.entries(values)
    .map(([k, v]) => `${k}=${fmtValue(v)}`)
    .join(', ');

// ---------------------------------------------------------------------------------------------------------
// The content both files share

interface BestRow {
  run: string;
  epoch: string;
  psnr: string;
  ssim: string;
  mae: string;
  train: string;
  rate: string;
}

const text = (title: string): Column => ({ title });
const num = (title: string): Column => ({ title, numeric: true });

const BEST_COLUMNS = [
  text('Run'),
  num('Best epoch'),
  num('PSNR (dB)'),
  num('SSIM'),
  num('MAE'),
  num('Train wall time'),
  num('Images/s'),
];

function bestRow(run: RunReport): BestRow {
  const best = run.best ?? bestByPsnr(run.evals);
  const common = { run: run.name, train: fmtDuration(run.trainSeconds), rate: fmtRate(run.imagesPerSec) };
  if (!best) return { ...common, epoch: run.status ?? 'not evaluated', psnr: '–', ssim: '–', mae: '–' };
  return {
    ...common,
    epoch: String(best.epoch),
    psnr: fmtPsnr(best.psnr),
    ssim: fmtSsim(best.ssim),
    mae: fmtMae(best.mae),
  };
}

const bestCells = (b: BestRow): string[] => [b.run, b.epoch, b.psnr, b.ssim, b.mae, b.train, b.rate];

const EVAL_COLUMNS = [
  num('Epoch'),
  num('Step'),
  num('PSNR (dB)'),
  num('SSIM'),
  num('MAE'),
  text('Eval time'),
];

const evalCells = (e: EvalRow): string[] => [
  String(e.epoch),
  String(e.step),
  fmtPsnr(e.psnr),
  fmtSsim(e.ssim),
  fmtMae(e.mae),
  fmtDuration(e.seconds),
];

const runCells = (run: RunReport): string[] => [
  run.name,
  fmtValues(run.values) || '–',
  run.dir,
  run.evals.length
    ? `${run.evals.length}${run.status ? ` (${run.status})` : ''}`
    : (run.status ?? 'not evaluated'),
  String(run.steps.length),
];

const RUN_COLUMNS = [
  text('Run'),
  text('Varied options'),
  text('Folder'),
  num('Epochs evaluated'),
  num('Steps logged'),
];

const PSNR_NOTE = [
  'PSNR here is computed on uint8 images (0–255) with MAX = 255, i.e. in the usual 8-bit range.',
  'The reference PyTorch document computed PSNR with MAX = 255 on images scaled to [0, 1], which adds',
  `20·log10(255) = ${PSNR_RANGE_OFFSET_DB.toFixed(2)} dB to every value: its reported 70.35 dB`,
  `(batch 32, epoch 23) and 73.95 dB (batch 64, epochs 10–13) read correctly as about`,
  `${(70.35 - PSNR_RANGE_OFFSET_DB).toFixed(1)} dB and ${(73.95 - PSNR_RANGE_OFFSET_DB).toFixed(1)} dB,`,
  'which are the numbers to compare with this report.',
].join(' ');

interface EpochPlot {
  heading: string;
  plot?: Plot;
  caption: string;
  /** Why there is no plot. */
  empty: string;
}

interface LossPlot {
  run: RunReport;
  plot?: Plot;
  caption: string;
}

interface Grid {
  grid: GridReport;
  dataUri?: string;
}

interface Rendered {
  epochPlots: EpochPlot[];
  lossPlots: LossPlot[];
  grids: Grid[];
}

/** File-name-safe and unique among `taken`. */
function plotName(base: string, taken: Set<string>): string {
  const slug =
    base
      .replace(/[^A-Za-z0-9._-]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 60) || 'run';
  let name = slug;
  for (let i = 2; taken.has(name.toLowerCase()); i++) name = `${slug}-${i}`;
  taken.add(name.toLowerCase());
  return name;
}

async function epochPlot(
  plotsDir: string,
  name: string,
  heading: string,
  yTitle: string,
  runs: RunReport[],
  metric: 'psnr' | 'ssim',
  caption: string,
): Promise<EpochPlot> {
  const series: EpochSeries[] = runs
    .filter((r) => r.evals.length > 0)
    .map((r) => ({ run: r.name, points: r.evals.map((e) => ({ epoch: e.epoch, value: e[metric] })) }));
  const points = series.flatMap((s) => s.points);
  const finite = points.filter((p) => Number.isFinite(p.value)).length;
  if (finite === 0) {
    const empty = points.length ? `No finite ${heading} value to plot.` : 'No run was evaluated.';
    return { heading, caption, empty };
  }
  const skipped = points.length - finite;
  const infinite = points.filter((p) => p.value === Number.POSITIVE_INFINITY).length;
  let note = '';
  if (skipped > 0) {
    note =
      infinite === skipped && metric === 'psnr'
        ? ` ${skipped} evaluation(s) with PSNR = inf (outputs identical to the targets) are not drawn.`
        : ` ${skipped} non-finite value(s) are not drawn.`;
  }
  const plot = await writePlot(plotsDir, name, epochSpec(`${heading} vs epoch`, yTitle, series));
  return { heading, plot, caption: caption + note, empty: '' };
}

async function lossPlot(plotsDir: string, name: string, run: RunReport): Promise<LossPlot> {
  if (run.steps.length === 0) return { run, caption: 'No training steps logged.' };
  const { rows, per } = downsampleLosses(run.steps);
  const window = smoothingWindow(rows.length);
  const points = per > 1 ? `each point the mean of ${per} consecutive logged steps` : 'every logged step';
  const caption =
    `${run.name}: generator GAN loss, generator L1 loss and discriminator loss against the step (${points})` +
    (window > 1 ? `; the solid line is the moving average over ${window} points.` : '.');
  const plot = await writePlot(plotsDir, name, lossSpec(`Losses, ${run.name}`, rows, window));
  return { run, plot, caption };
}

async function render(dir: string, r: CompareReport): Promise<Rendered> {
  const plotsDir = join(dir, 'plots');
  await mkdir(plotsDir, { recursive: true });
  const taken = new Set(['psnr', 'ssim']);
  const lossNames = r.runs.map((run) => plotName(`loss-${run.name}`, taken));
  const [psnr, ssim, lossPlots, grids] = await Promise.all([
    epochPlot(
      plotsDir,
      'psnr',
      'PSNR',
      'PSNR (dB)',
      r.runs,
      'psnr',
      'Validation PSNR per epoch (uint8, MAX = 255), all runs.',
    ),
    epochPlot(plotsDir, 'ssim', 'SSIM', 'SSIM', r.runs, 'ssim', 'Validation SSIM per epoch, all runs.'),
    Promise.all(r.runs.map((run, i) => lossPlot(plotsDir, lossNames[i]!, run))),
    Promise.all(
      r.grids.map(async (grid): Promise<Grid> => {
        try {
          const png = await readFile(resolve(dir, grid.png));
          return { grid, dataUri: `data:image/png;base64,${png.toString('base64')}` };
        } catch {
          return { grid };
        }
      }),
    ),
  ]);
  return { epochPlots: [psnr, ssim], lossPlots, grids };
}

// ---------------------------------------------------------------------------------------------------------
// The sections

const heading = (level: 1 | 2 | 3, text: string): Block => ({ kind: 'heading', level, text });
const paragraph = (text: string): Block => ({ kind: 'paragraph', text });

/** A table, or `empty` as a paragraph when it has no rows. */
const tableOr = (columns: Column[], rows: string[][], empty: string): Block =>
  rows.length ? { kind: 'table', columns, rows } : paragraph(empty);

const plotFigure = (plot: Plot, alt: string, caption: string): Block => ({
  kind: 'figure',
  image: { file: `plots/${plot.name}.png`, svg: plot.svg },
  alt,
  caption,
});

function reportBlocks(r: CompareReport, x: Rendered): Block[] {
  const none = (list: unknown[], text: string): Block[] => (list.length ? [] : [paragraph(text)]);
  return [
    heading(1, r.title),
    heading(2, 'Setup'),
    {
      kind: 'facts',
      facts: [
        { term: 'Dataset', text: r.dataset, as: 'lines' },
        { term: 'Command', text: r.command, as: 'code' },
        { term: 'Eval mode', text: r.evalMode, as: 'text' },
      ],
    },
    heading(3, 'Settings common to all runs'),
    tableOr(
      [text('Option'), text('Value')],
      Object.entries(r.settings).map(([k, v]) => [k, fmtValue(v)]),
      'None.',
    ),
    heading(3, 'Runs'),
    tableOr(RUN_COLUMNS, r.runs.map(runCells), 'No runs.'),

    heading(2, 'Best epoch per run'),
    tableOr(BEST_COLUMNS, r.runs.map(bestRow).map(bestCells), 'No runs.'),
    { kind: 'note', lead: 'Reading PSNR.', text: PSNR_NOTE },

    ...x.epochPlots.flatMap((p) => [
      heading(2, `${p.heading} vs epoch`),
      p.plot ? plotFigure(p.plot, `${p.heading} vs epoch`, p.caption) : paragraph(p.empty),
    ]),

    heading(2, 'Loss curves'),
    ...none(x.lossPlots, 'No runs.'),
    ...x.lossPlots.flatMap((l) => [
      heading(3, l.run.name),
      l.plot ? plotFigure(l.plot, `Losses, ${l.run.name}`, l.caption) : paragraph(l.caption),
    ]),

    heading(2, 'Image grids'),
    ...none(x.grids, 'No image grids.'),
    ...x.grids.flatMap((g): Block[] => [
      heading(3, g.grid.title),
      {
        kind: 'figure',
        image: { file: g.grid.png, ...(g.dataUri && { dataUri: g.dataUri }) },
        alt: g.grid.title,
        caption: g.grid.caption,
      },
    ]),

    heading(2, 'All evaluations'),
    ...none(r.runs, 'No runs.'),
    ...r.runs.map(
      (run): Block => ({
        kind: 'details',
        summary: run.name,
        open: run.evals.length > 0,
        body: [tableOr(EVAL_COLUMNS, run.evals.map(evalCells), 'Not evaluated.')],
      }),
    ),
  ];
}

// ---------------------------------------------------------------------------------------------------------

/**
 * Writes `dir/report.html`, `dir/report.md` and the plots (`dir/plots/NAME.svg` and `.png`: psnr, ssim and
 * one loss-RUN per run that logged steps). Returns the paths written.
 */
export async function writeReport(
  dir: string,
  r: CompareReport,
): Promise<{ html: string; md: string; plots: string[] }> {
  const rendered = await render(dir, r);
  const html = join(dir, 'report.html');
  const md = join(dir, 'report.md');
  const blocks = reportBlocks(r, rendered);
  await writeFile(html, renderHtml(r.title, blocks));
  await writeFile(md, renderMarkdown(blocks));
  const plots = [...rendered.epochPlots.map((p) => p.plot), ...rendered.lossPlots.map((l) => l.plot)]
    .filter((p): p is Plot => p !== undefined)
    .flatMap((p) => [p.svgPath, p.pngPath]);
  return { html, md, plots };
}
