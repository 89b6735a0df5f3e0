/**
 * `pix2pix bench`: training-step and inference throughput of the 256x256 reference model on the
 * native and WASM backends, against PyTorch on the same CPU threads, with analytic GFLOP/s and the
 * share of the machine's measured FP32 peak. Each configuration runs in its own process (its peak
 * RSS is its own); results go to stdout, to bench/RESULTS.md, and (with --json) one JSON line last.
 */
import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chooseMicroBatch } from '../src/train/memory.js';
import { generatorFlops, stepFlops } from './conv-layers.js';
import type { WorkerResult } from './worker.js';

export interface BenchOptions {
  backends: Array<'native' | 'wasm'>;
  batches: number[];
  /** Batches WASM runs at (its steps take tens of seconds at 4 and 16). */
  wasmBatches: number[];
  reps: number;
  /**
   * Rounds per configuration: ours and its PyTorch anchor alternate (A B A B ...), each run in its own
   * process, and the ratio reported is the median of the rounds' ratios, with its spread: this
   * machine's speed drifts by ~20 % over minutes, so two medians taken minutes apart do not compare.
   */
  rounds: number;
  /**
   * Micro-batches the native backend also trains at, per batch (gradient accumulation, exact with
   * instance norm): tfjs keeps every activation and gradient of a backward pass to its end, so
   * at 4 and 16 the whole batch at once holds far more memory than PyTorch.
   */
  microBatches: (batch: number) => number[];
  pytorch: boolean;
  profile: boolean;
  json: boolean;
  /** The command line, for RESULTS.md. */
  command: string;
  log: (line: string) => void;
}

export interface BenchEntry extends Partial<WorkerResult> {
  backend: string;
  kind: 'train' | 'infer';
  batch: number;
  micro_batch?: number;
  ms_per_image?: number;
  gflops?: number;
  pct_peak?: number;
  ratio_vs_pytorch?: number;
  /** Lowest and highest of the per-round ratios against PyTorch. */
  ratio_spread?: [number, number];
  /** Rounds the figures are the median of. */
  rounds?: number;
  /** The first step's time (the native backend times its conv layouts then), median over rounds. */
  first_step_ms?: number;
  /**
   * Native: the first step of round 1, with an empty layout cache (every shape's layouts timed), and
   * the median first step of the later rounds, which start from the cache round 1 wrote; each over
   * the median later (timed) step.
   */
  first_step_cold_ms?: number;
  first_step_warm_ms?: number;
  first_over_later_cold?: number;
  first_over_later_warm?: number;
  /** Native inference time over onnxruntime-node's on the same generator: median of the rounds' ratios. */
  ratio_vs_onnxruntime?: number;
  error?: string;
  memory_format?: string;
}

const here = dirname(fileURLToPath(import.meta.url));
const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
/** Debian's Python (its python3-torch and python3-skimage), not whatever `python3` is first on PATH. */
export const PYTHON = '/usr/bin/python3';
const SIZE = 256;

function lastJsonLine(out: string): Record<string, unknown> | null {
  const lines = out.trim().split('\n').reverse();
  for (const l of lines) {
    if (l.startsWith('{')) {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        // keep looking
      }
    }
  }
  return null;
}

function runWorker(
  backend: string,
  kind: string,
  batch: number,
  micro: number,
  warmup: number,
  reps: number,
  profile: boolean,
  layoutCache: string,
): BenchEntry {
  const args = [
    '--import',
    'tsx',
    join(here, `worker${ext}`),
    backend,
    kind,
    String(batch),
    String(warmup),
    String(reps),
    String(micro),
  ];
  const env = {
    ...process.env,
    P2P_LAYOUT_CACHE: layoutCache,
    ...(profile ? { P2P_NATIVE_PROFILE: '1' } : {}),
  };
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', env, maxBuffer: 64 << 20 });
  return entryOf(r, backend, kind, batch);
}

/**
 * A bench process's JSON result, or its failure with a one-line reason: the error it reported, else
 * the first error line of its stderr (an uncaught error's last line is only Node's version).
 */
function entryOf(r: SpawnSyncReturns<string>, backend: string, kind: string, batch: number): BenchEntry {
  const res = lastJsonLine(r.stdout ?? '');
  if (r.status === 0 && res) return res as unknown as BenchEntry;
  const reported = typeof res?.['error'] === 'string' ? res['error'] : undefined;
  const stderr = `${r.stderr ?? ''}`
    .split('\n')
    .find((l) => /Error|error:/.test(l))
    ?.trim();
  return {
    backend,
    kind: kind as 'train',
    batch,
    error: reported ?? stderr ?? `exit ${r.status ?? r.signal}`,
  };
}

/** Null when onnxruntime-node (a dev dependency) loads here, else why not. */
function onnxRuntimeAvailable(): string | null {
  const r = spawnSync(process.execPath, ['-e', "require('onnxruntime-node')"], {
    encoding: 'utf8',
    cwd: join(here, '..'),
  });
  return r.status === 0
    ? null
    : (r.stderr
        .split('\n')
        .find((l) => /Error/.test(l))
        ?.trim() ?? `exit ${r.status}`);
}

function pytorchAvailable(): string | null {
  if (!existsSync(PYTHON)) return `${PYTHON} not found`;
  const r = spawnSync(PYTHON, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
  return r.status === 0 ? null : 'torch is not importable';
}

function cpuFlags(): Set<string> {
  return new Set(
    (readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1] ?? '').trim().split(/\s+/),
  );
}

/**
 * OPENBLAS_CORETYPE for the PyTorch anchor, or null to leave OpenBLAS's own choice. Debian's torch
 * runs its convolutions as GEMMs in OpenBLAS, which picks kernels by CPU model; a model newer than
 * it knows falls back to its generic SSE3 kernels ("Prescott"): on a Sapphire Rapids machine with
 * Debian 12's OpenBLAS 0.3.21 its GEMMs ran at 30 GFLOP/s instead of 220-265 and PyTorch's training
 * step took 1.75x its time. An anchor that slow flatters every ratio, so where OpenBLAS settles for
 * less than the CPU's flags support, the anchor gets the kernels they do (a user's own
 * OPENBLAS_CORETYPE stands).
 */
export function anchorBlasCore(detected: string, flags: Set<string>): string | null {
  const has = (...fs: string[]) => fs.every((f) => flags.has(f));
  if (has('avx512f', 'avx512cd', 'avx512bw', 'avx512dq', 'avx512vl')) {
    return /^(SkylakeX|Cooperlake|SapphireRapids)$/i.test(detected) ? null : 'SKYLAKEX';
  }
  if (has('avx2', 'fma')) {
    return /^(Haswell|Zen|SkylakeX|Cooperlake|SapphireRapids)$/i.test(detected) ? null : 'HASWELL';
  }
  return null;
}

/** The PyTorch anchor's environment, and the line saying which BLAS kernels it runs. */
function pytorchEnv(): { env: NodeJS.ProcessEnv; note: string } {
  if (process.env['OPENBLAS_CORETYPE']) {
    return {
      env: process.env,
      note: `OpenBLAS kernels: ${process.env['OPENBLAS_CORETYPE']} (OPENBLAS_CORETYPE, set by the user)`,
    };
  }
  const r = spawnSync(PYTHON, [join(here, 'pytorch_ref.py'), '--blas-core'], { encoding: 'utf8' });
  const detected = r.status === 0 ? r.stdout.trim() : 'unknown';
  if (detected === 'none') return { env: process.env, note: 'BLAS: not OpenBLAS' };
  const core = anchorBlasCore(detected, cpuFlags());
  if (!core) return { env: process.env, note: `OpenBLAS kernels: ${detected} (its own choice)` };
  return {
    env: { ...process.env, OPENBLAS_CORETYPE: core },
    note: `OpenBLAS kernels: ${core} (OPENBLAS_CORETYPE set by the bench: OpenBLAS picked ${detected} for this CPU)`,
  };
}

function runPytorch(kind: string, batch: number, reps: number, env: NodeJS.ProcessEnv): BenchEntry {
  const args = [
    join(here, 'pytorch_ref.py'),
    '--kind',
    kind,
    '--batch',
    String(batch),
    '--reps',
    String(reps),
  ];
  const r = spawnSync(PYTHON, args, { encoding: 'utf8', env, maxBuffer: 64 << 20 });
  return entryOf(r, 'pytorch', kind, batch);
}

interface Peak {
  avx2: number;
  avx512: number;
  /** The machine's FP32 peak: the wider vectors where the CPU has them. */
  gflops: number;
}

/**
 * The FMA loop on all cores, and on one core times the core count; each twice, keeping the best:
 * another process on one core halves the all-core figure but leaves the one-core one alone, and
 * on an idle machine the two agree (the loop scales perfectly).
 */
async function measurePeak(): Promise<Peak | null> {
  try {
    const { loadAddon } = await import('../src/backend/native-addon.js');
    const addon = loadAddon();
    const n = cpus().length;
    let avx2 = 0;
    let avx512 = 0;
    for (let i = 0; i < 2; i++) {
      const all = addon.peak(0.5);
      const one = addon.peak(0.5, 1);
      avx2 = Math.max(avx2, all.avx2Gflops, one.avx2Gflops * n);
      avx512 = Math.max(avx512, all.avx512Gflops, one.avx512Gflops * n);
    }
    return { avx2, avx512, gflops: Math.max(avx2, avx512) };
  } catch {
    return null;
  }
}

function machine(): string {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const flags = cpuFlags();
  const isa = ['avx2', 'fma', 'avx512f', 'avx512_bf16'].filter((f) => flags.has(f)).join(' ');
  return `${cpu}, ${cpus().length} cores (${isa}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`;
}

/** A markdown table with padded columns, as the formatter (biome) writes them. */
export function markdownTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

function median(xs: number[]): number {
  const v = [...xs].sort((a, b) => a - b);
  const m = v.length >> 1;
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
}

const fmt = (v: number | undefined, d = 0) => (v == null || !Number.isFinite(v) ? '-' : v.toFixed(d));

/** Round i's time per image of `ours` over that of `theirs` (run just after it), for every round both finished. */
function roundRatios(ours: BenchEntry[], theirs: BenchEntry[]): number[] {
  return ours
    .map((r, i) =>
      r.ms_per_image && theirs[i]?.ms_per_image ? r.ms_per_image / theirs[i]!.ms_per_image! : NaN,
    )
    .filter(Number.isFinite);
}

export async function runBench(o: BenchOptions): Promise<BenchEntry[]> {
  const load = loadavg()[0]!;
  if (load > 0.7) {
    o.log(
      `warning: load average ${load.toFixed(2)}: other work on this ${cpus().length}-core machine skews timings`,
    );
  }
  const peak = await measurePeak();
  if (peak) {
    o.log(
      `FP32 peak (FMA loop, ${cpus().length} cores): ${peak.avx2.toFixed(0)} GFLOP/s with AVX2, ` +
        `${peak.avx512 ? `${peak.avx512.toFixed(0)} GFLOP/s with AVX-512` : 'no AVX-512'}`,
    );
  } else {
    o.log('FP32 peak not measured: the native addon is not built');
  }
  const flopsTrain = stepFlops(SIZE);
  const flopsInfer = generatorFlops(SIZE);
  o.log(
    `analytic conv FLOPs per image: train step ${(flopsTrain / 1e9).toFixed(1)} G, G inference ${(flopsInfer / 1e9).toFixed(1)} G`,
  );

  const configs: Array<{ backend: string; kind: 'train' | 'infer'; batch: number; micro: number }> = [];
  for (const backend of o.backends) {
    const batches = backend === 'wasm' ? o.batches.filter((b) => o.wasmBatches.includes(b)) : o.batches;
    for (const batch of batches) {
      // The micro-batch `train` would choose here (the whole batch where it fits).
      const chosen = chooseMicroBatch({ backend, size: SIZE, batchSize: batch, norm: 'instance' }).microBatch;
      configs.push({ backend, kind: 'train', batch, micro: chosen < batch ? chosen : 0 });
      if (backend === 'native') {
        for (const micro of o.microBatches(batch)) {
          if (micro > 0 && micro < batch && !configs.some((c) => c.batch === batch && c.micro === micro))
            configs.push({ backend, kind: 'train', batch, micro });
        }
      }
    }
    configs.push({ backend, kind: 'infer', batch: 1, micro: 0 });
  }
  const pyReason = o.pytorch ? pytorchAvailable() : 'disabled';
  if (o.pytorch && pyReason) o.log(`PyTorch reference skipped: ${pyReason}`);
  const torchEnv = pyReason ? null : pytorchEnv();
  if (torchEnv) o.log(`PyTorch anchor: ${torchEnv.note}`);
  if (!pyReason) {
    for (const batch of o.batches) configs.push({ backend: 'pytorch', kind: 'train', batch, micro: 0 });
    configs.push({ backend: 'pytorch', kind: 'infer', batch: 1, micro: 0 });
  }
  // The second inference anchor: the same generator exported to ONNX, in onnxruntime-node.
  const ortReason = o.backends.includes('native') ? onnxRuntimeAvailable() : 'no native run to compare';
  if (ortReason) o.log(`onnxruntime-node anchor skipped: ${ortReason}`);
  else configs.push({ backend: 'onnxruntime', kind: 'infer', batch: 1, micro: 0 });

  // The bench's own layout cache: round 1 starts cold whatever the user's cache holds, later rounds
  // start from what round 1 chose (what a second `train` run on this machine gets).
  const layoutCache = mkdtempSync(join(tmpdir(), 'p2p-bench-layouts-'));
  // Ours and the PyTorch run of the same kind and batch alternate, round after round.
  const runOne = (c: (typeof configs)[number]): BenchEntry => {
    // The native backend times its conv layouts on each shape's first call: two warm-up steps.
    const warmup = c.backend === 'native' ? 2 : 1;
    // Inference steps take ~0.1 s: more of them make its median steadier for the same time.
    const reps = c.kind === 'infer' ? Math.max(9, 3 * o.reps) : o.reps;
    const e =
      c.backend === 'pytorch'
        ? runPytorch(c.kind, c.batch, reps, torchEnv!.env)
        : runWorker(
            c.backend,
            c.kind,
            c.batch,
            c.micro,
            warmup,
            reps,
            o.profile && c.backend === 'native',
            layoutCache,
          );
    const tag = `${c.backend} ${c.kind} batch ${c.batch}${c.micro ? ` (micro-batch ${c.micro})` : ''}`;
    if (e.error) o.log(`  ${tag}: failed: ${e.error}`);
    else
      o.log(
        `  ${tag}: ${fmt(e.ms_per_image)} ms/image (steps ${e.times_ms?.map((t) => t.toFixed(0)).join(', ')} ms)`,
      );
    return e;
  };
  const anchorOf = (c: (typeof configs)[number]) =>
    configs.find((p) => p.backend === 'pytorch' && p.kind === c.kind && p.batch === c.batch);
  const perConfig = new Map<(typeof configs)[number], BenchEntry[]>(configs.map((c) => [c, []]));
  for (let round = 1; round <= o.rounds; round++) {
    o.log(`round ${round}/${o.rounds}${round === 1 ? ' (empty layout cache)' : ''}`);
    const pytorchDone = new Set<(typeof configs)[number]>();
    for (const c of configs) {
      if (c.backend === 'pytorch') continue;
      // WASM steps take minutes beyond batch 1: one round is all it gets.
      if (c.backend === 'wasm' && round > 1) continue;
      perConfig.get(c)!.push(runOne(c));
      const anchor = anchorOf(c);
      // One PyTorch run per round and configuration, shared by WASM and onnxruntime.
      if (anchor && !pytorchDone.has(anchor)) {
        perConfig.get(anchor)!.push(runOne(anchor));
        pytorchDone.add(anchor);
      }
    }
  }
  // Per configuration: the median over rounds of each figure, and the median of the round ratios.
  const entries: BenchEntry[] = configs.map((c) => {
    const runs = perConfig.get(c)!;
    const ok = runs.filter((e) => e.ms_per_image != null);
    if (!ok.length) return runs[0] ?? { backend: c.backend, kind: c.kind, batch: c.batch, error: 'not run' };
    const e: BenchEntry = { ...ok[Math.floor(ok.length / 2)]!, rounds: ok.length };
    e.ms_per_image = median(ok.map((r) => r.ms_per_image!));
    e.ms_per_step = median(ok.map((r) => r.ms_per_step!));
    e.peak_rss_mb = Math.max(...ok.map((r) => r.peak_rss_mb ?? 0));
    const firsts = ok.map((r) => r.warmup_ms?.[0]).filter((t): t is number => t != null);
    if (firsts.length) e.first_step_ms = median(firsts);
    if (c.backend === 'native' && runs[0]?.warmup_ms?.length && runs[0].ms_per_step) {
      e.first_step_cold_ms = runs[0].warmup_ms[0];
      e.first_over_later_cold = e.first_step_cold_ms! / runs[0].ms_per_step;
      const warm = runs.slice(1).filter((r) => r.ms_per_step && r.warmup_ms?.length);
      if (warm.length) {
        e.first_step_warm_ms = median(warm.map((r) => r.warmup_ms![0]!));
        e.first_over_later_warm = median(warm.map((r) => r.warmup_ms![0]! / r.ms_per_step!));
      }
    }
    const anchor = anchorOf(c);
    if (anchor && c.backend !== 'pytorch') {
      const theirs = perConfig.get(anchor)!;
      // Round i of ours against round i of PyTorch, run just after it.
      const ratios = roundRatios(runs, theirs);
      if (ratios.length) {
        e.ratio_vs_pytorch = median(ratios);
        e.ratio_spread = [Math.min(...ratios), Math.max(...ratios)];
      }
    }
    return e;
  });

  rmSync(layoutCache, { recursive: true, force: true });
  // Native inference against onnxruntime's, round by round (they ran minutes apart at most).
  const ortRuns = [...perConfig].find(([c]) => c.backend === 'onnxruntime')?.[1];
  const nativeInfer = entries.find((e) => e.backend === 'native' && e.kind === 'infer');
  const nativeInferRuns = [...perConfig].find(([c]) => c.backend === 'native' && c.kind === 'infer')?.[1];
  if (ortRuns && nativeInfer && nativeInferRuns) {
    const ratios = roundRatios(nativeInferRuns, ortRuns);
    if (ratios.length) {
      nativeInfer.ratio_vs_onnxruntime = median(ratios);
      o.log(
        `native inference / onnxruntime-node: ${fmt(nativeInfer.ratio_vs_onnxruntime, 2)} (rounds ${ratios.map((r) => r.toFixed(2)).join(', ')})`,
      );
    }
  }
  for (const e of entries) {
    if (e.ms_per_image == null) continue;
    const flops = e.kind === 'train' ? flopsTrain : flopsInfer;
    e.gflops = flops / (e.ms_per_image * 1e6);
    if (peak) e.pct_peak = (100 * e.gflops) / peak.gflops;
  }

  const header = [
    'backend',
    'run',
    'batch',
    'micro-batch',
    'ms/image',
    'GFLOP/s',
    '% peak',
    'peak RSS MB',
    'vs PyTorch (time, median of rounds)',
    'round ratios',
    'vs onnxruntime (time)',
    'vs PyTorch (RSS)',
    'first step ms',
    'first step cold / warm cache (x later step)',
  ];
  const rows = entries.map((e) => {
    const ref = entries.find((p) => p.backend === 'pytorch' && p.kind === e.kind && p.batch === e.batch);
    const rss =
      e.backend !== 'pytorch' && ref?.peak_rss_mb && e.peak_rss_mb
        ? e.peak_rss_mb / ref.peak_rss_mb
        : undefined;
    const name = `${e.backend}${e.memory_format ? ` (${e.memory_format})` : ''}`;
    const ms = e.error ? `failed: ${e.error}` : fmt(e.ms_per_image);
    return [
      name,
      e.kind,
      String(e.batch),
      String(e.micro_batch || '-'),
      ms,
      fmt(e.gflops, 1),
      fmt(e.pct_peak, 1),
      fmt(e.peak_rss_mb),
      fmt(e.ratio_vs_pytorch, 2),
      e.ratio_spread ? `${fmt(e.ratio_spread[0], 2)}-${fmt(e.ratio_spread[1], 2)} (${e.rounds})` : '-',
      fmt(e.ratio_vs_onnxruntime, 2),
      fmt(rss, 2),
      fmt(e.first_step_ms),
      e.first_step_cold_ms != null
        ? `${fmt(e.first_step_cold_ms)} (${fmt(e.first_over_later_cold, 1)}x) / ${e.first_step_warm_ms != null ? `${fmt(e.first_step_warm_ms)} (${fmt(e.first_over_later_warm, 2)}x)` : '-'}`
        : '-',
    ];
  });
  const table = markdownTable(header, rows);
  o.log(`\n${table}\n`);
  const profiled =
    entries.find((e) => e.kernels?.length && e.kind === 'train' && e.batch === 4) ??
    entries.find((e) => e.kernels?.length);
  let profileText = '';
  if (profiled?.kernels) {
    const total = profiled.kernels.reduce((s, k) => s + k.ms, 0);
    profileText =
      `Native kernel time per ${profiled.kind} step at batch ${profiled.batch} ` +
      `(${total.toFixed(0)} of ${fmt(profiled.ms_per_step)} ms in kernels):\n\n` +
      profiled.kernels
        .slice(0, 12)
        .map((k) => `- ${k.kernel}: ${k.ms.toFixed(1)} ms (${k.calls} calls)`)
        .join('\n');
    o.log(profileText);
  }

  const date = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const peakLine = peak
    ? `FP32 peak measured by the bench (FMA loop, all cores): ${peak.avx2.toFixed(0)} GFLOP/s AVX2, ${peak.avx512.toFixed(0)} GFLOP/s AVX-512; % peak is of ${peak.gflops.toFixed(0)} (oneDNN runs AVX-512 kernels here).`
    : 'FP32 peak not measured (native addon not built).';
  const section = [
    `## ${date}`,
    '',
    `- Machine: ${machine()}; load average at start ${load.toFixed(2)}`,
    `- Command: \`${o.command}\``,
    `- ${peakLine}`,
    ...(torchEnv ? [`- PyTorch anchor: ${torchEnv.note}.`] : []),
    `- Analytic conv FLOPs per image: ${(flopsTrain / 1e9).toFixed(1)} G per training step, ${(flopsInfer / 1e9).toFixed(1)} G per generator inference. ms/image is the median over ${o.rounds} rounds (ours and PyTorch alternating, each in its own process) of the median of ${o.reps} training steps (${Math.max(9, 3 * o.reps)} inference runs) after warm-up; the ratio is the median of the rounds' ratios.`,
    '',
    table,
    '',
    ...(profileText ? [profileText, ''] : []),
  ].join('\n');
  const path = join(here, 'RESULTS.md');
  const title = '# Benchmark results\n\nNewest first; written by `npm run bench` (`pix2pix bench`).\n\n';
  const old = existsSync(path) ? readFileSync(path, 'utf8').replace(title, '') : '';
  writeFileSync(path, `${title}${section}\n${old}`);
  o.log(`results added to ${path}`);

  if (o.json) {
    const slim = entries.map(({ kernels: _k, ...rest }) => rest);
    process.stdout.write(`${JSON.stringify({ date, machine: machine(), peak, results: slim })}\n`);
  }
  return entries;
}
