import { Command, Option } from 'commander';
import { runQuality } from '../../../bench/quality.js';
import { runBench } from '../../../bench/run.js';
import { consoleLogger, UserError } from '../../util/log.js';

const batchList = (v: string): number[] => {
  const xs = v.split(',').map((s) => Number(s.trim()));
  if (xs.some((x) => !Number.isInteger(x) || x < 1)) throw new Error(`bad batch list '${v}'`);
  return xs;
};

export function benchCommand(): Command {
  return new Command('bench')
    .description(
      "Time a full training step and generator inference of the 256x256 model on native and WASM, against PyTorch on the same CPU (given OpenBLAS's kernels for this CPU where OpenBLAS would fall back to generic ones; OPENBLAS_CORETYPE overrides) and, for inference, onnxruntime-node; or on WebGPU (--backend webgpu), with its adapter named, against PyTorch with CUDA on the same GPU where the machine has an NVIDIA GPU and a CUDA build of torch (python3 on PATH, else /usr/bin/python3); elsewhere WebGPU gets no anchor, and the bench says why",
    )
    .addOption(
      new Option(
        '--backend <name>',
        'backends to time: all is native and wasm; webgpu runs only when named (a software adapter needs P2P_WEBGPU_SOFTWARE=1, and then runs one step of its smallest batch: its times mean nothing)',
      )
        .choices(['native', 'wasm', 'webgpu', 'all'])
        .default('all'),
    )
    .option(
      '--batch <list>',
      'training batch sizes, each with the micro-batch `train` would choose (default: 1,4,16,32,64; webgpu: 1,4,16)',
      batchList,
    )
    .option(
      '--wasm-batch <list>',
      'batch sizes WASM also runs (its steps take minutes beyond 1)',
      batchList,
      [1],
    )
    .option('--reps <n>', 'timed steps per configuration and round (median)', (v) => Number(v), 3)
    .option(
      '--rounds <n>',
      'rounds per configuration: ours and PyTorch alternate, the ratio is the median of the rounds (WASM and a software WebGPU adapter run once)',
      (v) => Number(v),
      5,
    )
    .option(
      '--micro-batch <list>',
      'micro-batches native also trains each batch at (gradient accumulation); default 1 at batch 4, 4 at 16 and above',
      batchList,
    )
    .option('--no-pytorch', 'skip the PyTorch reference (CPU, or CUDA for webgpu)')
    .option('--profile', 'time every native kernel and print where a step goes')
    .option('--json', 'print one JSON result line last')
    .option(
      '--quality',
      'instead of speed: train the denoising preset for --minutes and score it against NL-means and TV (scikit-image) on the test split, into bench/QUALITY.md',
    )
    .option(
      '--data <dir>',
      'with --quality: a gaussian denoising dataset made by prepare',
      'data/denoise-256',
    )
    .option(
      '--indep <dirs>',
      "with --quality: comma-separated denoising datasets of photos unlike the training ones, scored too ('' for none)",
      'data/denoise-indep-15,data/denoise-indep-25,data/denoise-indep-50',
    )
    .option('--minutes <m>', 'with --quality: training budget in minutes', (v) => Number(v), 90)
    .option('--run <dir>', 'with --quality: the run folder (resumed when present)', 'runs/quality')
    .option(
      '--train <flags>',
      'with --quality: the train flags under test',
      '--preset denoise --eval-every 7',
    )
    .action(
      async (o: {
        backend: 'native' | 'wasm' | 'webgpu' | 'all';
        batch?: number[];
        wasmBatch: number[];
        reps: number;
        rounds: number;
        microBatch?: number[];
        pytorch: boolean;
        profile?: boolean;
        json?: boolean;
        quality?: boolean;
        data: string;
        indep: string;
        minutes: number;
        run: string;
        train: string;
      }) => {
        if (o.quality) {
          if (!(o.minutes > 0)) throw new UserError(`--minutes must be a positive number (got ${o.minutes})`);
          await runQuality({
            data: o.data,
            out: o.run,
            minutes: o.minutes,
            trainArgs: o.train.split(/\s+/).filter(Boolean),
            indep: o.indep.split(',').filter(Boolean),
            report: 'bench/QUALITY.md',
            command: `pix2pix ${process.argv.slice(2).join(' ')}`,
            log: (line) => consoleLogger.info(line),
          });
          return;
        }
        await runBench({
          backends: o.backend === 'all' ? ['native', 'wasm'] : [o.backend],
          // WebGPU reports no memory size, so its default stops at 16 (~5 GB of activations at 300 MB a pair).
          batches: o.batch ?? (o.backend === 'webgpu' ? [1, 4, 16] : [1, 4, 16, 32, 64]),
          wasmBatches: o.wasmBatch,
          reps: Math.max(1, o.reps),
          rounds: Math.max(1, Math.floor(o.rounds) || 1),
          microBatches: (batch) => o.microBatch ?? (batch >= 16 ? [4] : batch >= 4 ? [1] : []),
          pytorch: o.pytorch,
          profile: !!o.profile,
          json: !!o.json,
          command: `pix2pix ${process.argv.slice(2).join(' ')}`,
          log: (line) => consoleLogger.info(line),
        });
      },
    );
}
