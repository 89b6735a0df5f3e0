// What `serve` knows of the folders under --runs: which are runs and which hold runs (compare
// folders), each one's summary (with its state: training, stopped, finished) and details, and a
// poller that turns a run's growing files into server-sent events while `train` writes them.
import type { Stats } from 'node:fs';
import { open, readdir, realpath, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { latestCheckpoint, listCheckpointFolders, readCheckpointMeta } from '../run/checkpoints.js';
import { comparisonPath } from '../run/comparison.js';
import {
  evalCsvPath,
  isRunDir,
  listSamples,
  metricsPath,
  readEvalCsv,
  readSavedRun,
  runConfigPath,
} from '../run/folder.js';
import { CHECKPOINTS_DIR, GENERATOR_MODEL, RUN_CONFIG, SAMPLES_DIR } from '../run/layout.js';
import { bestByPsnr, type EvalRow, parseMetricsLine } from '../run/records.js';
import { runState } from '../run/state.js';
import { isInside, safeSegments } from './paths.js';
import type { CheckpointInfo, EvalRowJson, EventName, RunDetail, RunSummary, SampleInfo } from './types.js';

const statOrUndefined = (p: string): Promise<Stats | undefined> => stat(p).catch(() => undefined);
const isFile = async (p: string) => (await statOrUndefined(p))?.isFile() ?? false;

/** URL path of a file below --runs. */
export function fileUrl(id: string, rel: string): string {
  const parts = [...(id ? id.split('/') : []), ...rel.split('/')];
  return `/files/${parts.map(encodeURIComponent).join('/')}`;
}

const finite = (x: number): number | string => (Number.isFinite(x) ? x : String(x));

export function evalRowJson(r: EvalRow): EvalRowJson {
  return { ...r, psnr: finite(r.psnr), ssim: finite(r.ssim), mae: finite(r.mae) };
}

/** A run's eval.csv rows (empty when it has none or it cannot be parsed). */
const readEval = (dir: string): Promise<EvalRow[]> => readEvalCsv(dir).catch(() => []);

function bestOf(rows: EvalRow[]): RunSummary['best'] {
  const best = bestByPsnr(rows);
  return best && { epoch: best.epoch, psnr: finite(best.psnr), ssim: finite(best.ssim) };
}

/** A run's config.json (null when absent or unreadable), and why it could not be read, said without the server's paths. */
async function readConfig(dir: string): Promise<{ value: unknown; error?: string }> {
  try {
    return { value: (await readSavedRun(dir)) ?? null };
  } catch (e) {
    return { value: null, error: (e as Error).message.replace(runConfigPath(dir), RUN_CONFIG) };
  }
}

async function runSummary(dir: string, id: string, name: string, parent?: string): Promise<RunSummary> {
  const [state, rows, times] = await Promise.all([
    runState(dir),
    readEval(dir),
    Promise.all([metricsPath(dir), evalCsvPath(dir), runConfigPath(dir)].map(statOrUndefined)),
  ]);
  const updated = Math.max(...times.map((t) => t?.mtimeMs ?? 0));
  return {
    id,
    name,
    kind: 'run',
    ...(parent !== undefined && { parent }),
    ...(state.epoch !== undefined && { epoch: state.epoch }),
    ...(state.totalEpochs !== undefined && { totalEpochs: state.totalEpochs }),
    state,
    ...(rows.length > 0 && { best: bestOf(rows) }),
    ...(updated > 0 && { updated: new Date(updated).toISOString() }),
  };
}

/** Sub-folders of `dir` that may be listed: not hidden, really inside the root (links followed). */
async function subfolders(rootReal: string, dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  const out: string[] = [];
  for (const e of entries) {
    if (e.name.startsWith('.') || e.name.endsWith('.tmp')) continue;
    if (!e.isDirectory() && !e.isSymbolicLink()) continue;
    const real = await realpath(join(dir, e.name)).catch(() => undefined);
    if (!real || !isInside(rootReal, real) || !(await statOrUndefined(real))?.isDirectory()) continue;
    out.push(e.name);
  }
  return out.sort();
}

/**
 * Every run and group under the root (a real path): the root itself when it is a run; otherwise its
 * sub-folders that are runs, and those holding runs one level down (a compare folder, or any folder of
 * runs) with their runs. A root holding report.html is itself the group ''.
 */
export async function discoverRuns(rootReal: string): Promise<RunSummary[]> {
  const rootName = basename(rootReal);
  if (await isRunDir(rootReal)) return [await runSummary(rootReal, '', rootName)];
  const out: RunSummary[] = [];
  const top: RunSummary[] = [];
  for (const name of await subfolders(rootReal, rootReal)) {
    const dir = join(rootReal, name);
    if (await isRunDir(dir)) {
      top.push(await runSummary(dir, name, name));
      continue;
    }
    const children: RunSummary[] = [];
    for (const sub of await subfolders(rootReal, dir)) {
      if (await isRunDir(join(dir, sub))) {
        children.push(await runSummary(join(dir, sub), `${name}/${sub}`, sub, name));
      }
    }
    const report = await isFile(join(dir, 'report.html'));
    // A queued comparison is shown from the start; its cells appear as workers start them.
    if (children.length === 0 && !report && !(await isFile(comparisonPath(dir)))) continue;
    out.push({ id: name, name, kind: 'group', children: children.map((c) => c.id), report }, ...children);
  }
  if (await isFile(join(rootReal, 'report.html'))) {
    for (const r of top) r.parent = '';
    return [
      { id: '', name: rootName, kind: 'group', children: top.map((r) => r.id), report: true },
      ...top,
      ...out,
    ];
  }
  return [...top, ...out].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** The run or group `id` names (a path of at most two folders below the root), or undefined. */
export async function findRun(rootReal: string, id: string): Promise<RunSummary | undefined> {
  if (id !== '') {
    const parts = id.split('/');
    if (parts.length > 2) return undefined;
    try {
      safeSegments(parts);
    } catch {
      return undefined;
    }
  }
  return (await discoverRuns(rootReal)).find((r) => r.id === id);
}

/** Folder of a run or group id (a discovered one: its path was checked by discovery). */
export const runDir = (rootReal: string, id: string): string =>
  id === '' ? rootReal : join(rootReal, ...id.split('/'));

/** The named checkpoints of a run, oldest first, with their meta.json's step and time. */
export async function readCheckpoints(dir: string, id: string): Promise<CheckpointInfo[]> {
  const latest = await latestCheckpoint(dir).then((p) => p && basename(p));
  const out: CheckpointInfo[] = [];
  for (const c of await listCheckpointFolders(dir)) {
    const meta = await readCheckpointMeta(c.dir).catch(() => undefined);
    const hasModel = await isFile(join(c.dir, GENERATOR_MODEL));
    out.push({
      name: c.name,
      epoch: c.epoch,
      ...(meta && { step: meta.step }),
      ...(typeof meta?.time === 'string' && { time: meta.time }),
      mid: c.step !== undefined,
      latest: latest === c.name,
      ...(hasModel && { model: fileUrl(id, `${CHECKPOINTS_DIR}/${c.name}/${GENERATOR_MODEL}`) }),
    });
  }
  return out.sort((a, b) => a.epoch - b.epoch || (a.step ?? 0) - (b.step ?? 0));
}

/** The sample grids of a run (samples/epoch-NNNN.png), oldest first; the URL changes with the file. */
export async function readSamples(dir: string, id: string): Promise<SampleInfo[]> {
  const out: SampleInfo[] = [];
  for (const { name, epoch, path } of await listSamples(dir)) {
    const st = await statOrUndefined(path);
    if (!st?.isFile()) continue;
    out.push({
      name,
      epoch,
      url: `${fileUrl(id, `${SAMPLES_DIR}/${name}`)}?v=${Math.round(st.mtimeMs).toString(36)}-${st.size.toString(36)}`,
    });
  }
  return out;
}

/** GET /api/run: everything the dashboard shows of a run, or of a group and its runs. */
export async function readRunDetail(rootReal: string, summary: RunSummary): Promise<RunDetail> {
  const dir = runDir(rootReal, summary.id);
  const files = fileUrl(summary.id, '').replace(/\/?$/, '/');
  if (summary.kind === 'group') {
    const all = await discoverRuns(rootReal);
    const runs = await Promise.all(
      all
        .filter((r) => r.kind === 'run' && summary.children?.includes(r.id))
        .map(async (r) => ({ ...r, eval: (await readEval(runDir(rootReal, r.id))).map(evalRowJson) })),
    );
    return {
      summary,
      config: null,
      checkpoints: [],
      samples: [],
      eval: [],
      runs,
      ...(summary.report && { reportUrl: fileUrl(summary.id, 'report.html') }),
      files,
    };
  }
  const [config, checkpoints, samples, rows] = await Promise.all([
    readConfig(dir),
    readCheckpoints(dir, summary.id),
    readSamples(dir, summary.id),
    readEval(dir),
  ]);
  return {
    summary,
    config: config.value,
    ...(config.error && { configError: config.error }),
    checkpoints,
    samples,
    eval: rows.map(evalRowJson),
    files,
  };
}

// ---- live updates ----

/** One receiver of a run's events (an SSE response). */
export interface EventSink {
  /** `data` is the JSON of RunEvents[event] (built once per change, sent to every sink as it is). */
  send(event: EventName, data: string): void;
}

interface FileKey {
  ino: number;
  size: number;
  mtimeMs: number;
}
const sameKey = (a: FileKey | undefined, b: FileKey | undefined) =>
  a?.ino === b?.ino && a?.size === b?.size && a?.mtimeMs === b?.mtimeMs;
const keyOf = (st: Stats | undefined): FileKey | undefined =>
  st && { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs };

/** Lines per `metrics` event when a long metrics.jsonl is sent whole. */
const LINES_PER_EVENT = 5000;

/**
 * Polls one run's files and tells its sinks what changed: lines appended to metrics.jsonl (only whole
 * lines; a line being written waits for its newline), a rewritten metrics.jsonl (a resume truncates it)
 * as `metrics-reset`, and the whole eval rows, checkpoint list, sample list or config when they
 * changed. State updates and the events that announce them happen in one synchronous step, so a sink
 * added between polls gets a snapshot that the next events continue exactly.
 */
export class RunWatcher {
  readonly sinks = new Set<EventSink>();
  private metricsLines: string[] = [];
  private metricsKey?: { ino: number; offset: number };
  private evalKey?: FileKey;
  private evalJson = '[]';
  private configKey?: FileKey;
  private configJson = 'null';
  private checkpointsKey = '';
  private checkpointsJson = '[]';
  private samplesJson = '[]';
  private stateJson = 'null';
  private timer?: NodeJS.Timeout;
  private polling?: Promise<void>;
  private stopped = false;

  constructor(
    private readonly dir: string,
    private readonly id: string,
    private readonly pollMs: number,
  ) {}

  /** Polls once now (the first snapshot), then every pollMs until stop(). */
  async start(): Promise<void> {
    await this.poll();
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.poll().finally(() => this.schedule());
    }, this.pollMs);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** Waits for a poll in progress, then adds the sink with the current state as its snapshot. */
  async add(sink: EventSink): Promise<void> {
    await this.polling;
    sink.send('hello', JSON.stringify({ id: this.id }));
    const lines = this.metricsLines;
    if (lines.length === 0) sink.send('metrics-reset', '[]');
    for (let i = 0; i < lines.length; i += LINES_PER_EVENT) {
      sink.send(i === 0 ? 'metrics-reset' : 'metrics', `[${lines.slice(i, i + LINES_PER_EVENT).join(',')}]`);
    }
    sink.send('eval', this.evalJson);
    sink.send('checkpoints', this.checkpointsJson);
    sink.send('samples', this.samplesJson);
    sink.send('state', this.stateJson);
    sink.send('config', this.configJson);
    this.sinks.add(sink);
  }

  private broadcast(event: EventName, data: string): void {
    for (const s of this.sinks) s.send(event, data);
  }

  poll(): Promise<void> {
    if (!this.polling) {
      this.polling = this.pollOnce().finally(() => {
        this.polling = undefined;
      });
    }
    return this.polling;
  }

  private async pollOnce(): Promise<void> {
    await this.pollMetrics().catch(() => {});
    await this.pollEval().catch(() => {});
    await this.pollConfig().catch(() => {});
    await this.pollCheckpoints().catch(() => {});
    await this.pollSamples().catch(() => {});
    await this.pollState().catch(() => {});
  }

  private async pollMetrics(): Promise<void> {
    const path = metricsPath(this.dir);
    let handle: Awaited<ReturnType<typeof open>>;
    try {
      handle = await open(path, 'r');
    } catch {
      if (this.metricsKey) {
        this.metricsKey = undefined;
        this.metricsLines = [];
        this.broadcast('metrics-reset', '[]');
      }
      return;
    }
    try {
      const st = await handle.stat();
      const key = this.metricsKey;
      // A new file (renamed over the old one) or a shorter one: read it all again.
      const rewritten = !key || key.ino !== st.ino || st.size < key.offset;
      const from = rewritten ? 0 : key.offset;
      if (!rewritten && st.size === from) return;
      const buf = Buffer.alloc(st.size - from);
      let got = 0;
      while (got < buf.length) {
        const { bytesRead } = await handle.read(buf, got, buf.length - got, from + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      const end = buf.lastIndexOf(10, got - 1) + 1; // whole lines only
      const fresh: string[] = [];
      for (const line of buf.subarray(0, end).toString('utf8').split('\n')) {
        // A torn or foreign line is skipped, as every reader of metrics.jsonl does.
        if (parseMetricsLine(line)) fresh.push(line);
      }
      this.metricsKey = { ino: st.ino, offset: from + end };
      if (rewritten) {
        this.metricsLines = fresh;
        if (key || fresh.length > 0) {
          for (let i = 0; i < Math.max(1, fresh.length); i += LINES_PER_EVENT) {
            this.broadcast(
              i === 0 ? 'metrics-reset' : 'metrics',
              `[${fresh.slice(i, i + LINES_PER_EVENT).join(',')}]`,
            );
          }
        }
      } else if (fresh.length > 0) {
        this.metricsLines.push(...fresh);
        this.broadcast('metrics', `[${fresh.join(',')}]`);
      }
    } finally {
      await handle.close();
    }
  }

  private async pollEval(): Promise<void> {
    const key = keyOf(await statOrUndefined(evalCsvPath(this.dir)));
    if (sameKey(key, this.evalKey) && this.evalKey) return;
    const rows = key ? await readEval(this.dir) : [];
    const json = JSON.stringify(rows.map(evalRowJson));
    this.evalKey = key;
    if (json !== this.evalJson) {
      this.evalJson = json;
      this.broadcast('eval', json);
    }
  }

  private async pollConfig(): Promise<void> {
    const key = keyOf(await statOrUndefined(runConfigPath(this.dir)));
    if (sameKey(key, this.configKey) && this.configKey) return;
    const json = JSON.stringify((await readConfig(this.dir)).value);
    this.configKey = key;
    if (json !== this.configJson) {
      this.configJson = json;
      this.broadcast('config', json);
    }
  }

  private async pollCheckpoints(): Promise<void> {
    const names = (await listCheckpointFolders(this.dir)).map((c) => c.name);
    const latest = (await latestCheckpoint(this.dir)) ?? '';
    const key = `${names.join('/')}>${latest}`;
    if (key === this.checkpointsKey) return;
    const json = JSON.stringify(await readCheckpoints(this.dir, this.id));
    this.checkpointsKey = key;
    if (json !== this.checkpointsJson) {
      this.checkpointsJson = json;
      this.broadcast('checkpoints', json);
    }
  }

  /** After the checkpoints: a run's last checkpoint and its lock's release both end its training. */
  private async pollState(): Promise<void> {
    const json = JSON.stringify(await runState(this.dir));
    if (json !== this.stateJson) {
      this.stateJson = json;
      this.broadcast('state', json);
    }
  }

  private async pollSamples(): Promise<void> {
    const json = JSON.stringify(await readSamples(this.dir, this.id));
    if (json !== this.samplesJson) {
      this.samplesJson = json;
      this.broadcast('samples', json);
    }
  }
}
