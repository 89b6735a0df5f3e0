// `compare`: one run per combination of the varied options, each evaluated every epoch, then one report.
import { mkdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { writeGrid } from '../data/grid.js';
import { checkDataset } from '../data/loader.js';
import { evalModeName, evaluateRun, openTestSplit, readRun } from '../eval/evaluate.js';
import type { GridReport, RunReport } from '../eval/report.js';
import { generate } from '../models/fused.js';
import { loadModel } from '../models/io.js';
import {
  epochCheckpointPath,
  hasCheckpoints,
  latestCheckpoint,
  listCheckpoints,
  readCheckpointMeta,
} from '../run/checkpoints.js';
import { readEvalCsv, readMetrics } from '../run/folder.js';
import { GENERATOR_DIR } from '../run/layout.js';
import { bestByPsnr } from '../run/records.js';
import {
  parseOptionValue,
  TRAIN_OPTIONS,
  type TrainConfig,
  type TrainOption,
  trainOption,
  validateConfig,
} from '../train/config.js';
import { type Logger, silentLogger, UserError } from '../util/log.js';

type Value = TrainConfig[keyof TrainConfig];

/** One `--vary option=v1,v2,...`. */
export interface Variation {
  option: TrainOption;
  values: Value[];
}

/** Options `--vary` cannot take: they name the run itself, not a setting of it. */
const NOT_VARIED = new Set<keyof TrainConfig>(['data', 'out', 'backend', 'evalEvery']);

/** Parses `--vary` arguments; an unknown option or a bad value is one UserError. */
export function parseVary(specs: string[]): Variation[] {
  if (specs.length === 0)
    throw new UserError('compare needs at least one --vary option=v1,v2 (e.g. batch-size=32,64)');
  const seen = new Set<string>();
  return specs.map((spec) => {
    const eq = spec.indexOf('=');
    if (eq <= 0 || eq === spec.length - 1) {
      throw new UserError(`--vary '${spec}' is not option=value1,value2 (e.g. batch-size=32,64)`);
    }
    const name = spec.slice(0, eq).trim();
    const option = trainOption(name);
    if (!option || NOT_VARIED.has(option.key)) {
      const known = TRAIN_OPTIONS.filter((o) => !NOT_VARIED.has(o.key)).map((o) => o.flag);
      throw new UserError(
        `--vary: unknown training option '${name}'; it can vary one of ${known.join(', ')}`,
      );
    }
    if (seen.has(option.flag)) throw new UserError(`--vary names ${option.flag} twice`);
    seen.add(option.flag);
    const texts = spec.slice(eq + 1).split(',');
    const values = texts.map((t) => {
      const v = parseOptionValue(option, t);
      if (v === undefined) throw new UserError(`--vary ${option.flag}: '${t}' is not a valid value`);
      return v;
    });
    if (new Set(values).size !== values.length) throw new UserError(`--vary ${option.flag} repeats a value`);
    return { option, values };
  });
}

/** One cell of the grid of variations. */
export interface PlannedRun {
  /** `batch-size=32` (several joined by `, `). */
  name: string;
  /** Folder name under the compare folder: `batch-size=32` (several joined by `_`). */
  folder: string;
  values: Record<string, string | number | boolean>;
  overrides: Partial<TrainConfig>;
}

/** The cartesian product of the variations, first option outermost. */
export function planRuns(vary: Variation[]): PlannedRun[] {
  let cells: { flag: string; key: keyof TrainConfig; value: Value }[][] = [[]];
  for (const v of vary) {
    cells = cells.flatMap((c) =>
      v.values.map((value) => [...c, { flag: v.option.flag, key: v.option.key, value }]),
    );
  }
  return cells.map((c) => ({
    name: c.map((x) => `${x.flag}=${x.value}`).join(', '),
    folder: c.map((x) => `${x.flag}=${String(x.value).replace(/[^A-Za-z0-9.+-]/g, '_')}`).join('_'),
    values: Object.fromEntries(c.map((x) => [x.flag, x.value])),
    overrides: Object.fromEntries(c.map((x) => [x.key, x.value])) as Partial<TrainConfig>,
  }));
}

/** Options that may differ between a run on disk and the same run asked for again: they do not change what it learns. */
const RESUMABLE = new Set<keyof TrainConfig>([
  'data',
  'out',
  'backend',
  'evalEvery',
  'microBatch',
  'saveEverySteps',
  'keep',
  'epochs',
  'epochsDecay',
  'maxMinutes',
]);

/** Parses `--grid-epochs`: first, best, last or epoch numbers. */
export function parseGridEpochs(text: string): (number | 'first' | 'best' | 'last')[] {
  const tokens = text.split(',').map((t) => t.trim());
  return tokens.map((t) => {
    if (t === 'first' || t === 'best' || t === 'last') return t;
    const n = Number(t);
    if (!Number.isInteger(n) || n < 1) {
      throw new UserError(`--grid-epochs: '${t}' is not first, best, last or an epoch number`);
    }
    return n;
  });
}

export interface CompareOptions {
  /** Options common to all runs (data, and `out` = the compare folder). */
  base: TrainConfig;
  vary: Variation[];
  gridEpochs?: string;
  dropout?: boolean;
  /** The command line, shown in the report. */
  command: string;
  /** Trains (or resumes) one run on the active backend; the CLI passes its progress-bar trainer. */
  trainRun: (config: TrainConfig, resume: boolean) => Promise<unknown>;
  log?: Logger;
}

/** Refuses to reuse a run folder whose options differ from those asked for (beyond schedule length). */
async function checkReusable(dir: string, config: TrainConfig): Promise<void> {
  const { config: old } = await readRun(dir);
  // A run from before an option existed was trained with that option's default.
  const was = (o: (typeof TRAIN_OPTIONS)[number]) => old[o.key] ?? o.default;
  const diff = TRAIN_OPTIONS.filter((o) => !RESUMABLE.has(o.key) && was(o) !== config[o.key]);
  if (diff.length) {
    const what = diff.map((o) => `--${o.flag} ${was(o)} (asked: ${config[o.key]})`).join(', ');
    throw new UserError(`${dir} holds a run with other options: ${what}; remove it or choose another --out`);
  }
}

export interface CompareResult {
  html: string;
  md: string;
  runs: RunReport[];
}

/** The grid's cells under `base.out`: each one's plan and complete, validated options. */
export function planComparison(
  base: TrainConfig,
  vary: Variation[],
): { plans: PlannedRun[]; configs: TrainConfig[] } {
  const plans = planRuns(vary);
  const configs = plans.map((p) =>
    validateConfig({
      ...base,
      ...p.overrides,
      out: join(base.out, p.folder),
      evalEvery: base.evalEvery || 1,
    }),
  );
  return { plans, configs };
}

/** The dataset's counts, refusing one without test pairs: a comparison is scored on them. */
export async function checkComparisonData(data: string, log: Logger) {
  const check = await checkDataset(data, { log });
  if (check.counts.test === 0)
    throw new UserError(`dataset ${data} has no test pairs: compare needs them to score the runs`);
  return check;
}

/**
 * Trains one cell to the end of its schedule (resuming what its folder holds, if its options match),
 * then scores the epochs not evaluated yet (trained without evaluation, or whose evaluation was
 * interrupted).
 */
export async function trainCell(
  config: TrainConfig,
  trainRun: CompareOptions['trainRun'],
  o: { dropout?: boolean; log: Logger },
): Promise<void> {
  const existing = await listCheckpoints(config.out);
  // A cell stopped before its first epoch's checkpoint may hold a mid-epoch one to resume from.
  const resume = await hasCheckpoints(config.out);
  if (resume) await checkReusable(config.out, config);
  const last = existing.at(-1)?.epoch ?? 0;
  if (last < config.epochs + config.epochsDecay) await trainRun(config, resume);
  await evaluateRun(config.out, { onlyMissing: true, dropout: o.dropout, log: o.log });
}

/**
 * Trains (or resumes) one run per combination of `vary` under `base.out`, evaluates every epoch on the
 * test split, renders image grids at the chosen epochs, and writes report.html + report.md.
 */
export async function compareRuns(opts: CompareOptions): Promise<CompareResult> {
  const log = opts.log ?? silentLogger;
  const { plans, configs } = planComparison(opts.base, opts.vary);
  parseGridEpochs(opts.gridEpochs ?? 'first,best,last');
  const check = await checkComparisonData(opts.base.data, log);
  for (const [i, config] of configs.entries()) {
    const existing = await listCheckpoints(config.out);
    log.info(
      `run ${i + 1}/${plans.length}: ${plans[i]!.name} in ${config.out}${existing.length ? ` (resuming after epoch ${existing.at(-1)!.epoch})` : ''}`,
    );
    await trainCell(config, opts.trainRun, { dropout: opts.dropout, log });
  }
  return writeComparisonReport({ ...opts, plans, configs, counts: check, log });
}

export interface ComparisonReportOptions {
  base: TrainConfig;
  vary: Variation[];
  plans: PlannedRun[];
  configs: TrainConfig[];
  gridEpochs?: string;
  dropout?: boolean;
  command: string;
  /** The dataset's counts (checkComparisonData). */
  counts: Awaited<ReturnType<typeof checkComparisonData>>;
  /** Cells not finished, by folder, with what to say instead of their scores (e.g. "training, epoch 2/5"). */
  unfinished?: Map<string, string>;
  /** The backend the settings table names (default: the active one). */
  backend?: string;
  log?: Logger;
}

/** report.html + report.md from the cells' folders as they are now. */
export async function writeComparisonReport(o: ComparisonReportOptions): Promise<CompareResult> {
  const log = o.log ?? silentLogger;
  const out = o.base.out;
  const runs: RunReport[] = [];
  for (const [i, config] of o.configs.entries()) {
    const evals = (await readEvalCsv(config.out, o.dropout)).filter(
      (r) => r.epoch <= config.epochs + config.epochsDecay,
    );
    const latest = await latestCheckpoint(config.out);
    const meta = latest ? await readCheckpointMeta(latest) : undefined;
    const trainSeconds = meta?.trainSeconds ?? 0;
    const status = o.unfinished?.get(o.plans[i]!.folder);
    runs.push({
      name: o.plans[i]!.name,
      values: o.plans[i]!.values,
      dir: relative(out, config.out),
      steps: await readMetrics(config.out),
      evals,
      best: bestByPsnr(evals),
      trainSeconds,
      imagesPerSec: trainSeconds > 0 ? (meta?.images ?? 0) / trainSeconds : 0,
      ...(status !== undefined && { status }),
    });
  }
  const grids = await writeGrids(
    out,
    o.configs,
    runs,
    parseGridEpochs(o.gridEpochs ?? 'first,best,last'),
    o.dropout,
    log,
  );

  const varied = new Set(o.vary.map((v) => v.option.key));
  const settings = Object.fromEntries(
    TRAIN_OPTIONS.filter((t) => !varied.has(t.key) && t.key !== 'microBatch').map((t) => [
      t.flag,
      o.configs[0]![t.key],
    ]),
  ) as Record<string, string | number | boolean>;
  settings.backend = o.backend ?? tf.getBackend(); // the one `auto` chose
  const { counts, size } = o.counts;
  const { writeReport } = await import('../eval/report.js');
  const written = await writeReport(out, {
    title: `pix2pix comparison: ${o.vary.map((v) => v.option.flag).join(' x ')}`,
    dataset: `${o.base.data}: ${counts.train} train / ${counts.test} test pairs${size ? ` of ${size} px` : ''}`,
    command: o.command,
    evalMode: evalModeName(o.dropout),
    settings,
    runs,
    grids,
  });
  return { html: written.html, md: written.md, runs };
}

const SAMPLES = 4;
/** Smallest side a grid tile is shown at. */
const GRID_TILE = 160;

/** "Best epoch", "Best and last epoch", "Epoch 5". */
function gridTitle(tokens: (number | string)[]): string {
  const words = tokens.map((t) => (typeof t === 'number' ? `epoch ${t}` : t));
  const text = words.length > 1 ? `${words.slice(0, -1).join(', ')} and ${words.at(-1)}` : words[0]!;
  const titled = typeof tokens.at(-1) === 'number' ? text : `${text} epoch`;
  return `${titled[0]!.toUpperCase()}${titled.slice(1)}`;
}

/** Grid PNGs (input | ground truth | each run's output) of the first test pairs at the chosen epochs. */
async function writeGrids(
  out: string,
  configs: TrainConfig[],
  runs: RunReport[],
  tokens: ReturnType<typeof parseGridEpochs>,
  dropout: boolean | undefined,
  log: Logger,
): Promise<GridReport[]> {
  const source = await openTestSplit(configs[0]!, log);
  // Pairs spread over the split (its names are sorted, so the first few usually share one photo).
  const n = source.length;
  const wanted = new Set(
    Array.from({ length: Math.min(SAMPLES, n) }, (_, i) => Math.floor((i * n) / SAMPLES)),
  );
  const picked: { a: tf.Tensor4D[]; b: tf.Tensor4D[] } = { a: [], b: [] };
  let index = 0;
  for await (const batch of source.batches(0)) {
    for (let i = 0; i < batch.a.shape[0]; i++, index++) {
      if (!wanted.has(index)) continue;
      picked.a.push(tf.slice(batch.a, i, 1));
      picked.b.push(tf.slice(batch.b, i, 1));
    }
    tf.dispose([batch.a, batch.b]);
  }
  const sample = picked.a.length
    ? { a: tf.concat(picked.a) as tf.Tensor4D, b: tf.concat(picked.b) as tf.Tensor4D }
    : undefined;
  tf.dispose([...picked.a, ...picked.b]);
  if (!sample) return [];
  const grids: GridReport[] = [];
  const done = new Map<string, { tokens: (number | string)[]; grid: GridReport }>();
  const saved = await Promise.all(
    configs.map(async (c) => (await listCheckpoints(c.out)).map((x) => x.epoch)),
  );
  try {
    for (const token of tokens) {
      const epochs = saved.map((have, i) => {
        if (token === 'first') return have[0];
        if (token === 'last') return have.at(-1);
        if (token === 'best') return runs[i]!.best?.epoch;
        return have.includes(token) ? token : undefined;
      });
      const key = epochs.join(',');
      if (epochs.every((e) => e === undefined)) {
        log.warn(`--grid-epochs ${token}: no run has that checkpoint, no grid`);
        continue;
      }
      const same = done.get(key);
      if (same) {
        // e.g. best = last: one grid, titled with both.
        same.tokens.push(token);
        same.grid.title = gridTitle(same.tokens);
        continue;
      }
      const columns: tf.Tensor4D[] = [sample.a, sample.b];
      const labels: string[] = [];
      const fakes: tf.Tensor4D[] = [];
      for (const [i, c] of configs.entries()) {
        const epoch = epochs[i];
        if (epoch === undefined) continue;
        const dir = join(epochCheckpointPath(c.out, epoch), GENERATOR_DIR);
        let G: Awaited<ReturnType<typeof loadModel>>;
        try {
          G = await loadModel(dir);
        } catch (e) {
          log.warn(
            `grid ${token}: ${dir} cannot be loaded, left out (${(e as Error).message.split('\n')[0]})`,
          );
          continue;
        }
        const s = sample;
        fakes.push(tf.tidy(() => generate(G, s.a, dropout)));
        G.dispose();
        labels.push(`${runs[i]!.name} (epoch ${epoch})`);
      }
      const png = join('grids', `${typeof token === 'number' ? `epoch-${token}` : token}.png`);
      await mkdir(join(out, 'grids'), { recursive: true });
      // Small images are enlarged (nearest neighbour, pixels kept) so the grid can be read.
      await writeGrid(join(out, png), [...columns, ...fakes], {
        scale: Math.max(1, Math.ceil(GRID_TILE / sample.a.shape[1])),
      });
      tf.dispose(fakes);
      const grid = {
        title: gridTitle([token]),
        caption: `${sample.a.shape[0]} test pairs spread over the split, one per row. Columns: input | ground truth | ${labels.join(' | ')}.`,
        png,
      };
      grids.push(grid);
      done.set(key, { tokens: [token], grid });
    }
  } finally {
    tf.dispose([sample.a, sample.b]);
  }
  return grids;
}
