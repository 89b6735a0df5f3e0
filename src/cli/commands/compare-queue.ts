// `compare --queue`: enqueue a comparison's cells, follow them (--wait), show them (--status) and
// write the report from what is done (--report). Workers (`pix2pix worker`) do the training.
import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import {
  checkComparisonData,
  parseGridEpochs,
  parseVary,
  planComparison,
  writeComparisonReport,
} from '../../experiment/compare.js';
import {
  type CellJob,
  type CellStatus,
  cellJobId,
  cellStatuses,
  connectOnce,
  enqueueCells,
  parseQueueUrl,
} from '../../experiment/queue.js';
import {
  type ComparisonCell,
  type ComparisonFile,
  comparisonPath,
  readComparisonFile,
  writeComparisonFile,
} from '../../run/comparison.js';
import { readSavedRun } from '../../run/folder.js';
import type { TrainConfig } from '../../train/config.js';
import { fmtNum } from '../../util/format.js';
import { consoleLogger, UserError } from '../../util/log.js';
import { startBackend } from '../backend.js';

export interface QueueFlags {
  queue: string;
  data?: string;
  out: string;
  vary: string[];
  gridEpochs: string;
  evalDropout?: boolean;
  wait?: boolean;
  status?: boolean;
  report?: boolean;
  json?: boolean;
}

/** Seconds between two looks at the queue while --wait follows the cells. */
const POLL_S = 2;

/** One line of `--status`: the cell, its state, and what it is doing or why it failed. */
export function statusLine(s: CellStatus): string {
  const p = s.progress;
  const where = p?.worker ? ` on ${p.worker}` : '';
  const at =
    p?.epoch !== undefined
      ? `, epoch ${p.epoch}${p.totalEpochs ? `/${p.totalEpochs}` : ''}${p.step !== undefined ? `, step ${p.step}` : ''}${p.psnr !== undefined ? `, PSNR ${fmtNum(p.psnr, 2)} dB` : ''}`
      : '';
  switch (s.state) {
    case 'training':
      return `${s.cell.name}: training${where}${at}`;
    case 'failed':
      return `${s.cell.name}: failed after ${s.attempts} attempt${s.attempts === 1 ? '' : 's'}: ${s.error ?? 'no reason given'}`;
    case 'retrying':
      return `${s.cell.name}: retrying after attempt ${s.attempts} failed: ${s.error ?? 'no reason given'}`;
    default:
      return `${s.cell.name}: ${s.state}`;
  }
}

/** What the report says in place of the scores of a cell that is not done. */
function unfinishedCells(statuses: CellStatus[]): Map<string, string> {
  return new Map(
    statuses
      .filter((s) => s.state !== 'done')
      .map((s) => [s.cell.folder, s.state === 'failed' ? `failed: ${s.error ?? ''}` : s.state]),
  );
}

/** The report of a queued comparison from the cells done so far (the others marked as they are). */
async function writeQueuedReport(file: ComparisonFile<TrainConfig>, dir: string, statuses: CellStatus[]) {
  const vary = parseVary(file.vary);
  const base = { ...file.base, out: dir };
  const { plans, configs } = planComparison(base, vary);
  const counts = await checkComparisonData(file.data, consoleLogger);
  const done = statuses.find((s) => s.state === 'done');
  const backend = done ? (await readSavedRun(resolve(dir, done.cell.folder)))?.backend : undefined;
  await startBackend('auto');
  const result = await writeComparisonReport({
    base,
    vary,
    plans,
    configs,
    gridEpochs: file.gridEpochs,
    dropout: file.evalDropout,
    command: file.command,
    counts,
    unfinished: unfinishedCells(statuses),
    backend:
      typeof backend === 'string' ? `${backend} (the workers')` : "the workers' (see each run's config.json)",
    log: consoleLogger,
  });
  consoleLogger.info(`report: ${result.html} and ${result.md}`);
  return result;
}

/** Whether two comparisons are the same grid of the same runs (their cells' job ids). */
const sameCells = (a: ComparisonCell[], b: ComparisonCell[]) =>
  a.length === b.length && a.every((c, i) => c.jobId === b[i]!.jobId);

export async function queuedCompare(
  f: QueueFlags,
  baseFrom: (data: string, out: string) => TrainConfig,
): Promise<void> {
  const addr = parseQueueUrl(f.queue);
  const dir = resolve(f.out);
  if (f.status || f.report) {
    const file = await readComparisonFile<TrainConfig>(dir);
    if (!file) {
      throw new UserError(
        `${f.out} holds no queued comparison (no ${comparisonPath(f.out)}): queue one with compare --queue URL --data DIR --out ${f.out} --vary ...`,
      );
    }
    const conn = await connectOnce(addr);
    try {
      const statuses = await cellStatuses(conn, file.cells);
      if (f.status) {
        for (const s of statuses) consoleLogger.info(statusLine(s));
        if (f.json) process.stdout.write(`${JSON.stringify({ cells: statuses })}\n`);
      }
      if (f.report) await writeQueuedReport(file, dir, statuses);
    } finally {
      conn.disconnect();
    }
    return;
  }

  if (!f.data) throw new UserError('compare --queue needs --data (or --status / --report on a queued --out)');
  // Every argument is checked, and Redis reached, before anything is written or queued.
  const vary = parseVary(f.vary);
  parseGridEpochs(f.gridEpochs);
  // Absolute paths: the workers read the dataset and write the cells at the same paths.
  const base = baseFrom(resolve(f.data), dir);
  const { plans, configs } = planComparison(base, vary);
  await checkComparisonData(base.data, consoleLogger);
  const cells: ComparisonCell[] = plans.map((p, i) => ({
    name: p.name,
    folder: p.folder,
    values: p.values,
    jobId: cellJobId(configs[i]!),
  }));
  const conn = await connectOnce(addr);
  try {
    const existing = await readComparisonFile<TrainConfig>(dir);
    if (existing && !sameCells(existing.cells, cells)) {
      throw new UserError(
        `${f.out} holds another comparison (${comparisonPath(f.out)}: ${existing.vary.join(' ')}): choose another --out`,
      );
    }
    await mkdir(dir, { recursive: true });
    const file: ComparisonFile<TrainConfig> = {
      format: 'pix2pix-ts-comparison',
      version: 1,
      queue: addr.shown,
      data: base.data,
      vary: f.vary,
      gridEpochs: f.gridEpochs,
      evalDropout: f.evalDropout ?? false,
      command: ['pix2pix', ...process.argv.slice(2)].join(' '),
      base,
      cells,
      created: existing?.created ?? new Date().toISOString(),
    };
    await writeComparisonFile(dir, file);
    const jobs: CellJob[] = cells.map((cell, i) => ({
      dir,
      cell,
      config: configs[i]!,
      evalDropout: f.evalDropout ?? false,
    }));
    const { added, queued } = await enqueueCells(conn, jobs);
    consoleLogger.info(
      `queued ${added} cell${added === 1 ? '' : 's'} on ${addr.shown}${queued ? ` (${queued} queued before: not added again)` : ''}; train them with: pix2pix worker --queue ${addr.shown}`,
    );
    if (!f.wait) return;
    const shown = new Map<string, string>();
    for (;;) {
      const statuses = await cellStatuses(conn, cells);
      for (const s of statuses) {
        const line = statusLine(s);
        if (shown.get(s.cell.jobId) !== line) consoleLogger.info(line);
        shown.set(s.cell.jobId, line);
      }
      const lost = statuses.filter((s) => s.state === 'not queued');
      if (lost.length) {
        throw new UserError(
          `${lost.map((s) => s.cell.name).join('; ')}: no longer in the queue at ${addr.shown} (was its Redis emptied?): queue the comparison again`,
        );
      }
      if (statuses.every((s) => s.state === 'done' || s.state === 'failed')) {
        await writeQueuedReport(file, dir, statuses);
        const failed = statuses.filter((s) => s.state === 'failed');
        if (failed.length) {
          throw new UserError(
            `${failed.length} of ${cells.length} cells failed (${failed.map((s) => s.cell.name).join('; ')}): the report marks them`,
          );
        }
        return;
      }
      await new Promise((ok) => setTimeout(ok, POLL_S * 1000));
    }
  } finally {
    conn.disconnect();
  }
}
