import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, readFile, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';
import type * as tf from '@tensorflow/tfjs-core';
import type { TrainState } from '../src/train/step.js';

const made: string[] = [];
const removeAll = () => Promise.all(made.splice(0).map((d) => rm(d, { recursive: true, force: true })));
// Registered at import, so it belongs to the file's root and runs once every test of the file is done,
// passed or failed (an `after` inside a test would fire when that test ends).
after(removeAll);
// And if the file ends some other way (an uncaught error, process.exit): whatever is still there.
process.on('exit', () => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

/**
 * A fresh temp folder, removed when the test file ends, also on failure (training runs leave hundreds
 * of MB otherwise). Every test's folders come from here: `npm test` fails if anything is left in the
 * temp directory after the suite.
 */
export async function tempDir(prefix = 'p2p-data-'): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), prefix));
  made.push(d);
  return d;
}

/**
 * The tiny model for tests whose claim does not depend on the reference's width: 32 px images, ngf 8
 * and 4 down levels (the 8ngf innermost level keeps its dropout, so every source of randomness is
 * still there): 97 k generator parameters against 16.7 M for the default generator at 32 px and 54 M
 * at 256 px; ndf 8, a discriminator of 25 k parameters against 1.6 M (at 64 it costs ten times the
 * tiny generator's step). The tests whose claim is the reference network itself keep
 * DEFAULT_CONFIG's width.
 */
export const TINY = { size: 32, ngf: 8, ndf: 8, depth: 4 } as const;

/** TINY as `pix2pix train` flags. */
export const TINY_FLAGS = Object.entries(TINY).flatMap(([k, v]) => [`--${k}`, String(v)]);

/**
 * The portable backend that every machine has; the native one has its own tests. (Imported here, not
 * at the top: the files that only want tempDir or rng do not load tfjs and its backends, ~0.5 s each.)
 */
export async function useWasm(): Promise<void> {
  const { setupBackend } = await import('../src/backend/index.js');
  await setupBackend('wasm');
}

/**
 * Max abs difference over max abs reference value (the abs difference where the reference is all 0);
 * infinite where only one side is NaN.
 */
export function relErr(ref: ArrayLike<number>, got: ArrayLike<number>): number {
  if (got.length !== ref.length) throw new Error(`sizes differ: ${got.length} vs ${ref.length}`);
  let err = 0;
  let max = 0;
  for (let i = 0; i < ref.length; i++) {
    const r = ref[i]!;
    const g = got[i]!;
    if (Number.isNaN(r) || Number.isNaN(g)) {
      if (Number.isNaN(r) !== Number.isNaN(g)) return Number.POSITIVE_INFINITY;
      continue;
    }
    err = Math.max(err, Math.abs(r - g));
    max = Math.max(max, Math.abs(r));
  }
  return max > 0 ? err / max : err;
}

/** relErr of tensor `x` against the reference tensor `y`. */
export function relError(x: tf.Tensor, y: tf.Tensor): number {
  return relErr(y.dataSync(), x.dataSync());
}

/** Copies of every weight's values, to compare before and after an update. */
export function snapshot(vars: tf.Variable[]): Float32Array[] {
  return vars.map((v) => Float32Array.from(v.dataSync() as Float32Array));
}

/** Every number a resumed run depends on: both networks' weights and both optimizers' moments. */
export function trainStateValues(s: TrainState): Float32Array[] {
  const opt = (o: TrainState['optG']) => [...o.state().m, ...o.state().v];
  return [...s.G.getWeights(), ...s.D.getWeights(), ...opt(s.optG), ...opt(s.optD)].map((t) =>
    Float32Array.from(t.dataSync() as Float32Array),
  );
}

export function changedCount(before: Float32Array[], vars: tf.Variable[]): number {
  return vars.filter((v, i) => {
    const now = v.dataSync();
    return now.some((x, j) => x !== before[i][j]);
  }).length;
}

/** mulberry32: deterministic test data. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A run's metrics.jsonl, one parsed object per step. */
export async function readMetrics(runDir: string): Promise<Record<string, number>[]> {
  return (await readFile(join(runDir, 'metrics.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
}

/** metrics.jsonl without the timing field, which no two runs share. */
export async function metricsWithoutTiming(runDir: string): Promise<unknown[]> {
  return (await readMetrics(runDir)).map(({ images_per_s: _, ...rest }) => rest);
}

/** The bytes of both networks and both optimizers' moments in a run's latest checkpoint. */
export async function latestCheckpointBytes(runDir: string): Promise<Buffer[]> {
  const dir = join(runDir, 'checkpoints', await readlink(join(runDir, 'checkpoints', 'latest')));
  return Promise.all(
    ['generator/weights.bin', 'discriminator/weights.bin', 'optimizer-g.bin', 'optimizer-d.bin'].map((f) =>
      readFile(join(dir, f)),
    ),
  );
}

/**
 * Extracts a zip into `dir` with Info-ZIP's `unzip` (restores symlink entries as links) or Python's
 * zipfile (writes them as files holding the target's name, as Windows does); fails with their stderr.
 */
export function extract(tool: 'unzip' | 'python', archive: string, dir: string): void {
  const r =
    tool === 'unzip'
      ? spawnSync('unzip', ['-q', archive, '-d', dir], { encoding: 'utf8' })
      : spawnSync('python3', ['-m', 'zipfile', '-e', archive, dir], { encoding: 'utf8' });
  assert.equal(r.status, 0, `${tool}: ${r.stderr}`);
}

/**
 * The CLI entry beside this tree: bin/pix2pix.js of the checkout (through tsx), or of the compiled copy
 * that `npm test` runs (build/js, where it runs the JavaScript as it is).
 */
export const CLI = fileURLToPath(new URL('../bin/pix2pix.js', import.meta.url));

/** Node's flags for a child process that imports this tree's modules: tsx where they are TypeScript. */
export const TREE_NODE_FLAGS = import.meta.url.endsWith('.ts') ? ['--import', 'tsx'] : [];

/** The URL of a module of src/ in this tree, `srcModule('backend/native')` (through tsx, its .ts). */
export const srcModule = (path: string) => new URL(`../src/${path}.js`, import.meta.url).href;

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the real CLI entry (`node bin/pix2pix.js ...args`, CLI) as a user would, without blocking this
 * process (so tests that wait on a child can run side by side); `env` is added to this process's.
 */
export function pix2pix(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    child.on('error', fail);
    child.on('close', (code, signal) => done({ code, signal, stdout, stderr }));
  });
}

/** The CLI failed with exactly one `error` line matching `pattern`, and no stack trace. */
export function assertOneLineError(r: CliResult, pattern: RegExp): void {
  assert.notEqual(r.code, 0, r.stderr);
  const errors = r.stderr.split('\n').filter((l) => l.startsWith('error'));
  assert.equal(errors.length, 1, r.stderr);
  assert.match(errors[0]!, pattern);
  assert.ok(!/^\s+at /m.test(r.stderr), `no stack trace: ${r.stderr}`);
}
