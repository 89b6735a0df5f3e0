// `pix2pix bench --quality`: how good a denoiser the preset trains in a budget of minutes, against the
// classical filters a user already has (DESIGN.md section 8). Scores the noisy input, scikit-image's
// NL-means and TV on the dataset's test split (bench/classical_denoise.py), trains the preset for the
// budget with an evaluation every epoch, and writes PSNR/SSIM vs minutes of training as a table and a
// plot into bench/QUALITY.md.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import type { TopLevelSpec } from 'vega-lite';
import { writePlot } from '../src/eval/plots.js';
import { latestCheckpoint, listCheckpoints, readCheckpointMeta } from '../src/run/checkpoints.js';
import { readEvalCsv } from '../src/run/folder.js';
import type { EvalRow } from '../src/run/records.js';
import { UserError } from '../src/util/log.js';
import { markdownTable, PYTHON } from './run.js';

const here = dirname(fileURLToPath(import.meta.url));

export interface QualityOptions {
  /** A dataset made by `prepare --task denoise --degrade gaussian:SIGMA`. */
  data: string;
  /** The run folder (an existing one is resumed up to the budget). */
  out: string;
  /** Training budget in minutes (`train --max-minutes`). */
  minutes: number;
  /** The train flags under test (default: the denoising preset). */
  trainArgs: string[];
  /** Where the report goes (bench/QUALITY.md); its plot goes beside it. */
  report: string;
  /** The command line, recorded in the report. */
  command: string;
  /**
   * Denoising datasets of photos unlike the training ones (scripts/fetch-photos.sh --set eval, then
   * prepare --split 0): the anchors and the preset's best checkpoint are scored on each too.
   */
  indep: string[];
  log: (line: string) => void;
}

interface Score {
  psnr: number;
  ssim: number;
}

export interface Anchors {
  n: number;
  sigma: number;
  seconds: number;
  noisy: Score;
  nlmeans: Score;
  tv: Score;
}

/** One independent dataset: its classical anchors and the preset's score there. */
export interface IndepScore {
  data: string;
  anchors: Anchors;
  /** The preset's checkpoint scored (the best on the split), or undefined when none was. */
  preset?: Score & { epoch: number };
}

export interface QualityRow extends EvalRow {
  /** Minutes of training (not evaluating) when the checkpoint was written. */
  minutes: number;
}

/** The sigma of the dataset's gaussian degradation (the anchors need it); anything else is refused. */
async function datasetSigma(data: string): Promise<number> {
  let info: { options?: { task?: string; degrade?: string } };
  try {
    info = JSON.parse(await readFile(join(data, 'dataset.json'), 'utf8'));
  } catch {
    throw new UserError(`${data} has no readable dataset.json: make it with pix2pix prepare`);
  }
  const m = /^gaussian:(\d+(?:\.\d+)?)$/.exec(info.options?.degrade ?? '');
  if (info.options?.task !== 'denoise' || !m) {
    throw new UserError(
      `bench --quality needs a gaussian denoising dataset (prepare --task denoise --degrade gaussian:25); ${data} is ${info.options?.task ?? '?'} ${info.options?.degrade ?? ''}`,
    );
  }
  return Number(m[1]);
}

export function classicalAnchors(data: string, sigma: number): Anchors {
  const r = spawnSync(
    PYTHON,
    [join(here, 'classical_denoise.py'), '--data', data, '--sigma', String(sigma)],
    { encoding: 'utf8', maxBuffer: 16 << 20 },
  );
  const last = (r.stdout ?? '').trim().split('\n').at(-1) ?? '';
  if (r.status !== 0 || !last.startsWith('{')) {
    throw new UserError(
      `the classical anchors failed (${PYTHON} with python3-skimage): ${(r.stderr || r.error?.message || '').trim().split('\n').at(-1)}`,
    );
  }
  return JSON.parse(last) as Anchors;
}

const CLI = join(here, '..', 'bin', 'pix2pix.js');

/** Trains in a child process (the CLI, as a user runs it), its output passed through. */
function runTrain(args: string[]): Promise<number> {
  const child = spawn(process.execPath, [CLI, 'train', ...args], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  return new Promise((done) => child.on('exit', (code) => done(code ?? 1)));
}

/** `pix2pix eval --run RUN --data DATA --epochs EPOCH --json` (the CLI, as a user runs it): that epoch's scores. */
function evalOn(run: string, data: string, epoch: number): Score {
  const r = spawnSync(
    process.execPath,
    [CLI, 'eval', '--run', run, '--data', data, '--epochs', String(epoch), '--json'],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const last = (r.stdout ?? '').trim().split('\n').at(-1) ?? '';
  // `rows` is the whole csv after the merge, which may hold other epochs scored earlier.
  const row =
    r.status === 0 && last.startsWith('{')
      ? (JSON.parse(last) as { rows: EvalRow[] }).rows.find((x) => x.epoch === epoch)
      : undefined;
  if (!row) throw new UserError(`pix2pix eval of ${run} epoch ${epoch} on ${data} failed (exit ${r.status})`);
  return { psnr: row.psnr, ssim: row.ssim };
}

/** The independent datasets, each checked before anything trains (a one-line error saying how to make it). */
async function indepSigmas(dirs: string[]): Promise<number[]> {
  const sigmas: number[] = [];
  for (const dir of dirs) {
    if (!existsSync(join(dir, 'dataset.json'))) {
      throw new UserError(
        `${dir} does not exist: scripts/quality-data.sh makes the independent sets (the photos from scripts/fetch-photos.sh --set eval, then pix2pix prepare --split 0 at each sigma); --indep '' skips them`,
      );
    }
    sigmas.push(await datasetSigma(dir));
  }
  return sigmas;
}

/** Anchors on each independent dataset, and the run's `epoch` scored there. */
export function scoreIndependent(
  o: Pick<QualityOptions, 'indep' | 'out' | 'log'>,
  sigmas: number[],
  epoch: number | undefined,
): IndepScore[] {
  return o.indep.map((data, i) => {
    const anchors = classicalAnchors(data, sigmas[i]!);
    const preset = epoch === undefined ? undefined : { epoch, ...evalOn(o.out, data, epoch) };
    o.log(
      `${data} (sigma ${anchors.sigma}, ${anchors.n} pairs): NL-means ${anchors.nlmeans.psnr.toFixed(2)} dB / ${anchors.nlmeans.ssim.toFixed(4)}${preset ? `, preset epoch ${epoch} ${preset.psnr.toFixed(2)} dB / ${preset.ssim.toFixed(4)}` : ''}`,
    );
    return { data, anchors, preset };
  });
}

/** eval.csv rows with each checkpoint's minutes of training (from its meta.json). */
export async function scoredRows(runDir: string): Promise<QualityRow[]> {
  const minutes = new Map<number, number>();
  // The epoch checkpoints, and the mid-epoch one --max-minutes may have stopped at (latest).
  const latest = await latestCheckpoint(runDir);
  const dirs = [...(await listCheckpoints(runDir)).map((c) => c.dir), ...(latest ? [latest] : [])];
  for (const dir of dirs) {
    const meta = await readCheckpointMeta(dir).catch(() => undefined);
    if (meta?.trainSeconds !== undefined) minutes.set(meta.step, meta.trainSeconds / 60);
  }
  return (await readEvalCsv(runDir))
    .filter((r) => minutes.has(r.step))
    .map((r) => ({ ...r, minutes: minutes.get(r.step)! }));
}

function psnrSpec(rows: QualityRow[], anchors: Anchors): TopLevelSpec {
  const lines = [
    { name: `NL-means ${anchors.nlmeans.psnr.toFixed(2)} dB`, psnr: anchors.nlmeans.psnr },
    { name: `TV ${anchors.tv.psnr.toFixed(2)} dB`, psnr: anchors.tv.psnr },
    { name: `noisy input ${anchors.noisy.psnr.toFixed(2)} dB`, psnr: anchors.noisy.psnr },
  ];
  return {
    title: 'Test-split PSNR vs minutes of training',
    width: 520,
    height: 300,
    layer: [
      {
        data: { values: rows.map((r) => ({ minutes: r.minutes, psnr: r.psnr })) },
        mark: { type: 'line', point: true },
        encoding: {
          x: { field: 'minutes', type: 'quantitative', title: 'minutes of training' },
          y: { field: 'psnr', type: 'quantitative', title: 'PSNR (dB)', scale: { zero: false } },
        },
      },
      {
        data: { values: lines },
        mark: { type: 'rule', strokeDash: [4, 4] },
        encoding: {
          y: { field: 'psnr', type: 'quantitative' },
          color: { field: 'name', type: 'nominal', title: 'anchors' },
        },
      },
    ],
  };
}

function cpuModel(): string {
  return cpus()[0]?.model.trim() ?? 'unknown CPU';
}

/** The table of the independent datasets: each method's PSNR / SSIM per dataset, and the preset's lead. */
function indepTable(indep: IndepScore[], picture?: IndepPicture): string[] {
  if (indep.length === 0) return [];
  const cell = (sc: Score) => `${sc.psnr.toFixed(2)} / ${sc.ssim.toFixed(4)}`;
  const epoch = indep.find((x) => x.preset)?.preset?.epoch;
  return [
    `On photos unlike the training ones (the sample photos of OpenCV and scikit-image, \`scripts/fetch-photos.sh --set eval\`), the preset's best epoch on the split${epoch === undefined ? '' : ` (${epoch})`} against the same filters, PSNR dB / SSIM:`,
    '',
    markdownTable(
      ['dataset', 'sigma', 'pairs', 'noisy input', 'TV', 'NL-means', 'preset', 'preset - NL-means'],
      indep.map(({ data, anchors: a, preset }) => [
        `\`${data}\``,
        String(a.sigma),
        String(a.n),
        cell(a.noisy),
        cell(a.tv),
        cell(a.nlmeans),
        preset ? cell(preset) : '-',
        preset
          ? `${(preset.psnr - a.nlmeans.psnr).toFixed(2)} dB / ${(preset.ssim - a.nlmeans.ssim).toFixed(4)}`
          : '-',
      ]),
    ),
    '',
    ...(picture
      ? [
          `![noisy, NL-means, preset, clean](${picture.path})`,
          '',
          `Rows: ${picture.names.map((n) => `\`${n}\``).join(', ')} of \`${picture.data}\`; columns: noisy input, NL-means, the preset, clean.`,
          '',
        ]
      : []),
  ];
}

/** The picture of independent tiles, as the report links it. */
export interface IndepPicture {
  /** Relative to the report. */
  path: string;
  data: string;
  names: string[];
}

export function qualityMarkdown(
  o: Pick<QualityOptions, 'data' | 'minutes' | 'trainArgs' | 'command' | 'out'>,
  rows: QualityRow[],
  anchors: Anchors,
  plotPath: string,
  indep: IndepScore[] = [],
  picture?: IndepPicture,
): string {
  const best = bestRow(rows);
  const beats = best && best.psnr > anchors.nlmeans.psnr && best.ssim > anchors.nlmeans.ssim;
  const verdict = !best
    ? 'No checkpoint was evaluated.'
    : beats
      ? `The preset beats NL-means on PSNR (+${(best.psnr - anchors.nlmeans.psnr).toFixed(2)} dB) and SSIM (+${(best.ssim - anchors.nlmeans.ssim).toFixed(4)}) after ${best.minutes.toFixed(1)} minutes of training.`
      : `The preset falls short of NL-means: best ${best.psnr.toFixed(2)} dB / SSIM ${best.ssim.toFixed(4)} at ${best.minutes.toFixed(1)} minutes, against ${anchors.nlmeans.psnr.toFixed(2)} dB / ${anchors.nlmeans.ssim.toFixed(4)}.`;
  return [
    '# Denoising quality: the preset against classical filters',
    '',
    `Measured ${new Date().toISOString().slice(0, 10)} on ${cpuModel()} (${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB), by \`${o.command}\`.`,
    `Dataset \`${o.data}\`, test split of ${anchors.n} pairs, gaussian noise sigma ${anchors.sigma}; train flags \`${o.trainArgs.join(' ')}\`, budget ${o.minutes} minutes; run folder \`${o.out}\`.`,
    'Scores: PSNR (MAX 255) and SSIM (11x11 Gaussian window, sigma 1.5) per image on uint8 RGB, averaged over the split; the anchors are scored by scikit-image with the same definitions.',
    '',
    `**${verdict}**`,
    '',
    markdownTable(
      ['method', 'PSNR dB', 'SSIM'],
      [
        ['noisy input', anchors.noisy] as const,
        ['TV (Chambolle, weight 0.08)', anchors.tv] as const,
        ['NL-means (h 0.8 sigma, 5x5 patches, distance 6, fast)', anchors.nlmeans] as const,
        ...(best ? [[`pix2pix-ts preset, best epoch ${best.epoch}`, best] as const] : []),
      ].map(([name, sc]) => [name, sc.psnr.toFixed(2), sc.ssim.toFixed(4)]),
    ),
    '',
    ...indepTable(indep, picture),
    markdownTable(
      ['epoch', 'step', 'minutes of training', 'PSNR dB', 'SSIM', 'MAE'],
      rows.map((r) => [
        String(r.epoch),
        String(r.step),
        r.minutes.toFixed(1),
        r.psnr.toFixed(2),
        r.ssim.toFixed(4),
        r.mae.toFixed(2),
      ]),
    ),
    '',
    `![PSNR vs minutes](${plotPath})`,
    '',
  ].join('\n');
}

export async function runQuality(
  o: QualityOptions,
): Promise<{ rows: QualityRow[]; anchors: Anchors; indep: IndepScore[] }> {
  const sigma = await datasetSigma(o.data);
  const indepSigma = await indepSigmas(o.indep);
  o.log(`classical anchors on ${o.data} (sigma ${sigma}): noisy input, NL-means, TV ...`);
  const anchors = classicalAnchors(o.data, sigma);
  o.log(
    `anchors (${anchors.n} pairs, ${anchors.seconds.toFixed(0)} s): noisy ${anchors.noisy.psnr.toFixed(2)} dB, TV ${anchors.tv.psnr.toFixed(2)} dB, NL-means ${anchors.nlmeans.psnr.toFixed(2)} dB / SSIM ${anchors.nlmeans.ssim.toFixed(4)}`,
  );
  const resume = existsSync(join(o.out, 'config.json')) ? ['--resume'] : [];
  const args = [
    '--data',
    o.data,
    '--out',
    o.out,
    ...o.trainArgs,
    '--max-minutes',
    String(o.minutes),
    // Every epoch unless the flags say otherwise (an evaluation of 700 256 px pairs takes ~1.5 minutes).
    ...(o.trainArgs.includes('--eval-every') ? [] : ['--eval-every', '1']),
    ...resume,
  ];
  o.log(`training: pix2pix train ${args.join(' ')}`);
  const code = await runTrain(args);
  if (code !== 0) throw new UserError(`training exited with ${code}; the run in ${o.out} can be resumed`);
  const best = bestRow(await scoredRows(o.out));
  const indep = scoreIndependent(o, indepSigma, best?.epoch);
  const picture = await indepPicture(o, indep, best?.epoch);
  const rows = await writeQualityReport(o, anchors, indep, picture);
  o.log(`wrote ${o.report}`);
  return { rows, anchors, indep };
}

/** Side of each image in the picture of independent tiles, and the gap between them. */
const TILE = 256;
const GAP = 4;

/**
 * A picture of 4 tiles of `data` (evenly spread over its sorted names), a row each: the noisy input,
 * NL-means' output, the run's epoch `epoch` (through `pix2pix translate`, as a user runs it) and the
 * clean tile, written to `path` (JPEG).
 */
export async function writeIndepPicture(
  o: Pick<QualityOptions, 'out'>,
  data: string,
  sigma: number,
  epoch: number,
  path: string,
): Promise<string[]> {
  const all = (await readdir(join(data, 'test', 'A'))).filter((n) => n.endsWith('.png')).sort();
  const names = [0, 1, 2, 3].map((i) => all[Math.floor((i * all.length) / 4)]!);
  const tmp = await mkdtemp(join(tmpdir(), 'p2p-quality-'));
  try {
    const dirs = { noisy: join(tmp, 'noisy'), nlmeans: join(tmp, 'nlmeans'), preset: join(tmp, 'preset') };
    for (const d of Object.values(dirs)) await mkdir(d);
    for (const n of names) await copyFile(join(data, 'test', 'A', n), join(dirs.noisy, n));
    const nl = spawnSync(
      PYTHON,
      [join(here, 'classical_denoise.py'), '--data', data, '--sigma', String(sigma), '--limit', '1'].concat([
        '--save',
        names.join(','),
        '--save-dir',
        dirs.nlmeans,
      ]),
      { encoding: 'utf8' },
    );
    if (nl.status !== 0)
      throw new UserError(`NL-means for the picture failed: ${nl.stderr.trim().split('\n').at(-1)}`);
    const tr = spawnSync(
      process.execPath,
      [
        CLI,
        'translate',
        '--model',
        o.out,
        '--epoch',
        String(epoch),
        '--input',
        dirs.noisy,
        '--output',
        dirs.preset,
      ],
      { encoding: 'utf8' },
    );
    if (tr.status !== 0)
      throw new UserError(`pix2pix translate for the picture failed: ${tr.stderr.trim().split('\n').at(-1)}`);
    const columns = [dirs.noisy, dirs.nlmeans, dirs.preset, join(data, 'test', 'B')];
    const side = (k: number) => k * TILE + (k - 1) * GAP;
    await sharp({ create: { width: side(4), height: side(4), channels: 3, background: '#ffffff' } })
      .composite(
        names.flatMap((n, row) =>
          columns.map((dir, col) => ({
            input: join(dir, n),
            left: col * (TILE + GAP),
            top: row * (TILE + GAP),
          })),
        ),
      )
      // JPEG at 92 without chroma subsampling: a tenth of the PNG's 3 MB, and its artefacts are far
      // below the residual noise the picture is there to show.
      .jpeg({ quality: 92, chromaSubsampling: '4:4:4' })
      .toFile(path);
    return names;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** The picture of the sigma-25 independent set (else the first), beside the report. */
async function indepPicture(
  o: Pick<QualityOptions, 'out' | 'report' | 'log'>,
  indep: IndepScore[],
  epoch: number | undefined,
): Promise<IndepPicture | undefined> {
  const set = indep.find((x) => x.anchors.sigma === 25) ?? indep[0];
  if (!set || epoch === undefined) return undefined;
  const file = join(dirname(o.report), 'quality-indep.jpg');
  const names = await writeIndepPicture(o, set.data, set.anchors.sigma, epoch, file);
  o.log(`wrote ${file}`);
  return { path: relative(dirname(o.report), file), data: set.data, names };
}

/** The row with the highest PSNR (the split's best epoch). */
function bestRow(rows: QualityRow[]): QualityRow | undefined {
  return rows.reduce<QualityRow | undefined>((b, r) => (!b || r.psnr > b.psnr ? r : b), undefined);
}

/** bench/QUALITY.md and its plot from the run's eval.csv and checkpoints and the anchors' scores. */
export async function writeQualityReport(
  o: Pick<QualityOptions, 'data' | 'minutes' | 'trainArgs' | 'command' | 'out' | 'report'>,
  anchors: Anchors,
  indep: IndepScore[] = [],
  picture?: IndepPicture,
): Promise<QualityRow[]> {
  const rows = await scoredRows(o.out);
  const plot = await writePlot(dirname(o.report), 'quality-psnr', psnrSpec(rows, anchors));
  await writeFile(
    o.report,
    qualityMarkdown(o, rows, anchors, relative(dirname(o.report), plot.svgPath), indep, picture),
  );
  return rows;
}
