// `pix2pix bench --quality`: how good a denoiser the preset trains in a budget of minutes, against the
// classical filters a user already has (DESIGN.md section 8). Scores the noisy input, scikit-image's
// NL-means and TV on the dataset's test split (bench/classical_denoise.py), trains the preset for the
// budget with an evaluation every epoch, and writes PSNR/SSIM vs minutes of training as a table and a
// plot into bench/QUALITY.md.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
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

/** Trains in a child process (the CLI, as a user runs it), its output passed through. */
function runTrain(args: string[]): Promise<number> {
  const child = spawn(process.execPath, [join(here, '..', 'bin', 'pix2pix.js'), 'train', ...args], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  return new Promise((done) => child.on('exit', (code) => done(code ?? 1)));
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

export function qualityMarkdown(
  o: Pick<QualityOptions, 'data' | 'minutes' | 'trainArgs' | 'command' | 'out'>,
  rows: QualityRow[],
  anchors: Anchors,
  plotPath: string,
): string {
  const best = rows.reduce<QualityRow | undefined>((b, r) => (!b || r.psnr > b.psnr ? r : b), undefined);
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

export async function runQuality(o: QualityOptions): Promise<{ rows: QualityRow[]; anchors: Anchors }> {
  const sigma = await datasetSigma(o.data);
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
  const rows = await writeQualityReport(o, anchors);
  o.log(`wrote ${o.report}`);
  return { rows, anchors };
}

/** bench/QUALITY.md and its plot from the run's eval.csv and checkpoints and the anchors' scores. */
export async function writeQualityReport(
  o: Pick<QualityOptions, 'data' | 'minutes' | 'trainArgs' | 'command' | 'out' | 'report'>,
  anchors: Anchors,
): Promise<QualityRow[]> {
  const rows = await scoredRows(o.out);
  const plot = await writePlot(dirname(o.report), 'quality-psnr', psnrSpec(rows, anchors));
  await writeFile(o.report, qualityMarkdown(o, rows, anchors, relative(dirname(o.report), plot.svgPath)));
  return rows;
}
