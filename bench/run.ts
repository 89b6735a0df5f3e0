/**
 * `pix2pix bench`: training-step and inference throughput of the 256x256 reference model on the
 * native and WASM backends, against PyTorch on the same CPU threads, with analytic GFLOP/s and the
 * share of the machine's measured FP32 peak; or on the WebGPU backend, with its adapter named,
 * against PyTorch with CUDA on the same NVIDIA GPU where there is one. Each configuration runs in its
 * own process (its peak RSS is its own); results go to stdout, to bench/RESULTS.md, and (with --json)
 * one JSON line last.
 */
import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, freemem, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chooseMicroBatch } from '../src/train/memory.js';
import { UserError } from '../src/util/log.js';
import { generatorFlops, stepFlops } from './conv-layers.js';
import type { AdapterProbe, WorkerResult } from './worker.js';

export type BenchBackend = 'native' | 'wasm' | 'webgpu';
/** Where a PyTorch anchor runs. */
export type AnchorDevice = 'cpu' | 'cuda';

export interface BenchOptions {
  backends: BenchBackend[];
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
  /** PyTorch's device, and its GPU's name on CUDA. */
  device?: AnchorDevice;
  gpu?: string;
}

const here = dirname(fileURLToPath(import.meta.url));
const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
/**
 * Debian's Python (its python3-torch and python3-skimage), not whatever `python3` is first on PATH, for
 * the CPU anchor; the CUDA anchor looks on PATH first (Debian's torch has no CUDA).
 */
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

/** How a PyTorch anchor is started: which Python, on which device, in which environment. */
interface TorchRun {
  python: string;
  device: AnchorDevice;
  env: NodeJS.ProcessEnv;
}

function runPytorch(kind: string, batch: number, reps: number, t: TorchRun): BenchEntry {
  const args = [
    join(here, 'pytorch_ref.py'),
    '--kind',
    kind,
    '--batch',
    String(batch),
    '--reps',
    String(reps),
    '--device',
    t.device,
  ];
  const r = spawnSync(t.python, args, { encoding: 'utf8', env: t.env, maxBuffer: 64 << 20 });
  return entryOf(r, 'pytorch', kind, batch);
}

function hasNvidiaGpu(): boolean {
  if (existsSync('/dev/nvidia0')) return true;
  return spawnSync('nvidia-smi', ['-L'], { encoding: 'utf8' }).status === 0;
}

/** The Python whose torch reaches an NVIDIA GPU through CUDA here, with that GPU's name; else why none does. */
function cudaTorch(): { python: string; gpu: string } | { reason: string } {
  if (!hasNvidiaGpu())
    return { reason: 'no CUDA PyTorch here (no NVIDIA GPU: no /dev/nvidia0, and nvidia-smi does not run)' };
  const ask = 'import torch; print(torch.cuda.is_available() and torch.cuda.get_device_name(0))';
  for (const python of new Set(['python3', PYTHON])) {
    const r = spawnSync(python, ['-c', ask], { encoding: 'utf8' });
    const out = r.status === 0 ? r.stdout.trim() : '';
    if (out && out !== 'False') return { python, gpu: out };
  }
  return {
    reason: `no CUDA PyTorch here (an NVIDIA GPU, but torch.cuda.is_available() is not True in python3 or ${PYTHON})`,
  };
}

/** What this machine offers the PyTorch anchors: for each device, undefined where it runs, else why not. */
export interface TorchHere {
  cpu?: string;
  cuda?: string;
}

/**
 * The PyTorch run a backend's times are divided by, or why there is none. The CPU backends get
 * PyTorch on the same CPU; WebGPU gets PyTorch with CUDA on the same NVIDIA GPU, and never the CPU
 * one: that ratio would compare a GPU with a CPU, not our step with PyTorch's. A software adapter gets
 * none: its times are a CPU emulating a GPU, and any ratio would read as a judgement of the GPU path.
 */
export function pytorchAnchor(
  backend: BenchBackend,
  here: TorchHere,
  adapter?: { software: boolean },
): { device: AnchorDevice } | { skipped: string } {
  if (backend !== 'webgpu') return here.cpu ? { skipped: here.cpu } : { device: 'cpu' };
  if (adapter?.software) return { skipped: 'the WebGPU adapter is software: nothing to compare' };
  return here.cuda ? { skipped: here.cuda } : { device: 'cuda' };
}

/**
 * What the WebGPU runs cover: on a hardware adapter every batch, round and step asked for (`reps`
 * undefined: the usual counts); on a software one (SwiftShader: a 256 px step takes minutes) one
 * timed step of the smallest batch in one round, to show the path runs, since its times mean nothing.
 */
export function webgpuPlan(
  software: boolean,
  batches: number[],
  rounds: number,
): { batches: number[]; rounds: number; reps?: number } {
  return software ? { batches: [Math.min(...batches)], rounds: 1, reps: 1 } : { batches, rounds };
}

/** Whether an entry ran on the CPU, the only place the FMA peak (and RSS as its memory) means anything. */
export function onCpu(e: { backend: string; device?: AnchorDevice }): boolean {
  return e.backend !== 'webgpu' && e.device !== 'cuda';
}

/**
 * The lines (log and RESULTS.md) naming the WebGPU adapter and what its times are compared with:
 * `anchor` is pytorchAnchor's answer for webgpu, `cudaGpu` the name torch gives its GPU.
 */
export function webgpuNotes(
  probe: Pick<AdapterProbe, 'adapter' | 'software'>,
  anchor: { device: AnchorDevice } | { skipped: string },
  cudaGpu = 'the GPU',
): string[] {
  return [
    `WebGPU adapter: ${probe.adapter}`,
    probe.software
      ? 'timings on a software adapter mean nothing (a CPU running the GPU shaders): one step of the smallest batch, to show the path runs'
      : 'device' in anchor
        ? `WebGPU anchor: PyTorch with CUDA on ${cudaGpu}, FP32 (TF32 off), synchronised after each step; the ratio is WebGPU's time over PyTorch's`
        : `no PyTorch anchor for webgpu: ${anchor.skipped}`,
  ];
}

/** The WebGPU adapter a webgpu worker gets here, or why it gets none (one line). */
function probeAdapter(): AdapterProbe | { reason: string } {
  const args = ['--import', 'tsx', join(here, `worker${ext}`), 'webgpu', 'adapter'];
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  const e = entryOf(r, 'webgpu', 'adapter', 0);
  return e.error ? { reason: e.error } : (e as unknown as AdapterProbe);
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
  // The adapter first: a webgpu run that cannot start says why once, not once per configuration.
  let adapter: AdapterProbe | undefined;
  if (o.backends.includes('webgpu')) {
    const probe = probeAdapter();
    if ('reason' in probe) throw new UserError(`webgpu: ${probe.reason}`);
    adapter = probe;
  }
  const gpuPlan = webgpuPlan(adapter?.software ?? false, o.batches, o.rounds);
  // The FMA peak is the CPU's: a WebGPU run alone has no use for it.
  const cpuRun = o.backends.some((b) => b !== 'webgpu');
  const peak = cpuRun ? await measurePeak() : null;
  if (peak) {
    o.log(
      `FP32 peak (FMA loop, ${cpus().length} cores): ${peak.avx2.toFixed(0)} GFLOP/s with AVX2, ` +
        `${peak.avx512 ? `${peak.avx512.toFixed(0)} GFLOP/s with AVX-512` : 'no AVX-512'}`,
    );
  } else if (cpuRun) {
    o.log('FP32 peak not measured: the native addon is not built');
  }
  const flopsTrain = stepFlops(SIZE);
  const flopsInfer = generatorFlops(SIZE);
  o.log(
    `analytic conv FLOPs per image: train step ${(flopsTrain / 1e9).toFixed(1)} G, G inference ${(flopsInfer / 1e9).toFixed(1)} G`,
  );

  const configs: Array<{
    backend: string;
    kind: 'train' | 'infer';
    batch: number;
    micro: number;
    device?: AnchorDevice;
  }> = [];
  const batchesOf = (backend: string) =>
    backend === 'wasm'
      ? o.batches.filter((b) => o.wasmBatches.includes(b))
      : backend === 'webgpu'
        ? gpuPlan.batches
        : o.batches;
  // WASM steps take minutes beyond batch 1: one round is all it gets.
  const roundsOf = (backend: string) =>
    backend === 'wasm' ? 1 : backend === 'webgpu' ? gpuPlan.rounds : o.rounds;
  for (const backend of o.backends) {
    for (const batch of batchesOf(backend)) {
      // The micro-batch `train` would choose here (the whole batch where it fits).
      const gpu =
        adapter && backend === 'webgpu'
          ? { maxStorageBufferBindingSize: adapter.max_binding_bytes }
          : undefined;
      const chosen = chooseMicroBatch({
        backend,
        size: SIZE,
        batchSize: batch,
        norm: 'instance',
        gpu,
        memory: { total: totalmem(), free: freemem() },
      }).microBatch;
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
  // Each backend's PyTorch anchor (see pytorchAnchor), probed only where a backend could use it.
  const cuda = o.pytorch && o.backends.includes('webgpu') ? cudaTorch() : undefined;
  const torchHere: TorchHere = {
    cpu: o.pytorch ? (cpuRun ? (pytorchAvailable() ?? undefined) : undefined) : 'disabled',
    cuda: o.pytorch ? (cuda && 'reason' in cuda ? cuda.reason : undefined) : '--no-pytorch',
  };
  const anchorFor = new Map<string, AnchorDevice>();
  const skipped = new Set<string>();
  let gpuNotes: string[] = [];
  for (const backend of o.backends) {
    const a = pytorchAnchor(backend, torchHere, adapter);
    if ('device' in a) anchorFor.set(backend, a.device);
    else if (backend !== 'webgpu' && o.pytorch) skipped.add(a.skipped);
    if (backend === 'webgpu' && adapter)
      gpuNotes = webgpuNotes(adapter, a, cuda && 'gpu' in cuda ? cuda.gpu : undefined);
  }
  // Native and WASM share the CPU anchor, and its reason once.
  for (const reason of skipped) o.log(`PyTorch reference skipped: ${reason}`);
  for (const line of gpuNotes) o.log(line);
  const devices = new Set(anchorFor.values());
  const torchEnv = devices.has('cpu') ? pytorchEnv() : null;
  if (torchEnv) o.log(`PyTorch anchor: ${torchEnv.note}`);
  const torchRun = (device: AnchorDevice): TorchRun =>
    device === 'cuda'
      ? { python: cuda && 'python' in cuda ? cuda.python : PYTHON, device, env: process.env }
      : { python: PYTHON, device, env: torchEnv!.env };
  for (const device of devices) {
    // Every batch some backend anchored here trains at.
    const batches = new Set(o.backends.filter((b) => anchorFor.get(b) === device).flatMap(batchesOf));
    for (const batch of [...batches].sort((x, y) => x - y))
      configs.push({ backend: 'pytorch', kind: 'train', batch, micro: 0, device });
    configs.push({ backend: 'pytorch', kind: 'infer', batch: 1, micro: 0, device });
  }
  // The second inference anchor: the same generator exported to ONNX, in onnxruntime-node.
  const ortReason = o.backends.includes('native') ? onnxRuntimeAvailable() : 'no native run to compare';
  if (ortReason && cpuRun) o.log(`onnxruntime-node anchor skipped: ${ortReason}`);
  else if (!ortReason) configs.push({ backend: 'onnxruntime', kind: 'infer', batch: 1, micro: 0 });
  // onnxruntime runs on the CPU: it shares the CPU backends' PyTorch run.
  if (anchorFor.get('native') === 'cpu') anchorFor.set('onnxruntime', 'cpu');

  // The bench's own layout cache: round 1 starts cold whatever the user's cache holds, later rounds
  // start from what round 1 chose (what a second `train` run on this machine gets).
  const layoutCache = mkdtempSync(join(tmpdir(), 'p2p-bench-layouts-'));
  // Ours and the PyTorch run of the same kind and batch alternate, round after round.
  const runOne = (c: (typeof configs)[number]): BenchEntry => {
    // The native backend times its conv layouts on each shape's first call, and WebGPU compiles its
    // shaders then: two warm-up steps (one on a software adapter, whose steps take minutes).
    const warmup = c.backend === 'native' || (c.backend === 'webgpu' && !adapter?.software) ? 2 : 1;
    // Inference steps take ~0.1 s: more of them make its median steadier for the same time.
    const reps =
      c.backend === 'webgpu' && gpuPlan.reps
        ? gpuPlan.reps
        : c.kind === 'infer'
          ? Math.max(9, 3 * o.reps)
          : o.reps;
    const e =
      c.backend === 'pytorch'
        ? runPytorch(c.kind, c.batch, reps, torchRun(c.device!))
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
    const tag = `${c.backend}${c.device === 'cuda' ? ' (cuda)' : ''} ${c.kind} batch ${c.batch}${c.micro ? ` (micro-batch ${c.micro})` : ''}`;
    if (e.error) o.log(`  ${tag}: failed: ${e.error}`);
    else
      o.log(
        `  ${tag}: ${fmt(e.ms_per_image)} ms/image (steps ${e.times_ms?.map((t) => t.toFixed(0)).join(', ')} ms)`,
      );
    return e;
  };
  const anchorOf = (c: (typeof configs)[number]) =>
    configs.find(
      (p) =>
        p.backend === 'pytorch' &&
        p.device === anchorFor.get(c.backend) &&
        p.kind === c.kind &&
        p.batch === c.batch,
    );
  const perConfig = new Map<(typeof configs)[number], BenchEntry[]>(configs.map((c) => [c, []]));
  const rounds = Math.max(...o.backends.map(roundsOf));
  for (let round = 1; round <= rounds; round++) {
    o.log(`round ${round}/${rounds}${round === 1 ? ' (empty layout cache)' : ''}`);
    const pytorchDone = new Set<(typeof configs)[number]>();
    for (const c of configs) {
      if (c.backend === 'pytorch') continue;
      if (round > roundsOf(c.backend)) continue;
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
    // A failed PyTorch run reports no device: the row names the one it was asked for.
    const device = c.device ? { device: c.device } : {};
    if (!ok.length)
      return {
        ...(runs[0] ?? { backend: c.backend, kind: c.kind, batch: c.batch, error: 'not run' }),
        ...device,
      };
    const e: BenchEntry = { ...ok[Math.floor(ok.length / 2)]!, rounds: ok.length, ...device };
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
    if (peak && onCpu(e)) e.pct_peak = (100 * e.gflops) / peak.gflops;
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
    const ref = entries.find(
      (p) =>
        p.backend === 'pytorch' &&
        p.device === anchorFor.get(e.backend) &&
        p.kind === e.kind &&
        p.batch === e.batch,
    );
    // Host RSS is a CPU run's memory, not a GPU run's.
    const rss =
      e.backend !== 'pytorch' && onCpu(e) && ref?.peak_rss_mb && e.peak_rss_mb
        ? e.peak_rss_mb / ref.peak_rss_mb
        : undefined;
    const tags = [e.device === 'cuda' ? 'cuda' : '', e.memory_format ?? ''].filter(Boolean);
    const name = `${e.backend}${tags.length ? ` (${tags.join(', ')})` : ''}`;
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
    : cpuRun
      ? 'FP32 peak not measured (native addon not built).'
      : 'No CPU backend timed, so no CPU FP32 peak and no % peak.';
  const section = [
    `## ${date}`,
    '',
    `- Machine: ${machine()}; load average at start ${load.toFixed(2)}`,
    `- Command: \`${o.command}\``,
    `- ${peakLine}`,
    ...(torchEnv ? [`- PyTorch anchor: ${torchEnv.note}.`] : []),
    ...gpuNotes.map((l) => `- ${l[0]!.toUpperCase()}${l.slice(1)}.`),
    `- Analytic conv FLOPs per image: ${(flopsTrain / 1e9).toFixed(1)} G per training step, ${(flopsInfer / 1e9).toFixed(1)} G per generator inference. ms/image is the median over ${rounds} rounds (ours and PyTorch alternating, each in its own process) of the median of ${gpuPlan.reps ? `${gpuPlan.reps} step (software WebGPU adapter)` : `${o.reps} training steps (${Math.max(9, 3 * o.reps)} inference runs)`} after warm-up; the ratio is the median of the rounds' ratios.`,
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
    process.stdout.write(`${JSON.stringify({ date, machine: machine(), peak, adapter, results: slim })}\n`);
  }
  return entries;
}
