import { Command, Option } from 'commander';
import { BACKENDS, type BackendChoice } from '../../backend/index.js';
import { NORMS } from '../../models/layers.js';
import { DISCRIMINATORS } from '../../models/patchgan.js';
import { type TrainConfig, validateConfig } from '../../train/config.js';
import { type EpochEvent, train } from '../../train/loop.js';
import { consoleLogger } from '../../util/log.js';
import { floatArg, intArg } from '../args.js';
import { startBackend } from '../backend.js';
import { ProgressReporter } from '../progress.js';

/** The training options shared by `train`, `demo` and `compare`. */
export function addTrainOptions(cmd: Command): Command {
  return cmd
    .option('--size <px>', 'image side fed to the networks (power of two >= 32)', intArg, 256)
    .option('--batch-size <n>', 'pairs per step', intArg, 1)
    .option('--epochs <n>', 'epochs at the initial learning rate', intArg, 200)
    .option('--epochs-decay <n>', 'further epochs with the learning rate decaying linearly to 0', intArg, 0)
    .addOption(new Option('--netD <kind>', 'discriminator').choices(DISCRIMINATORS).default('patch16'))
    .addOption(new Option('--norm <kind>', 'normalisation layers').choices(NORMS).default('instance'))
    .addOption(new Option('--gan-mode <mode>', 'GAN loss').choices(['vanilla', 'lsgan']).default('vanilla'))
    .option('--lambda <w>', 'weight of the L1 term', floatArg, 100)
    .option('--lr <rate>', 'Adam learning rate', floatArg, 2e-4)
    .option('--beta1 <b>', 'Adam beta1', floatArg, 0.5)
    .addOption(
      new Option('--direction <dir>', 'AtoB: A is the input').choices(['AtoB', 'BtoA']).default('AtoB'),
    )
    .option('--no-augment', 'no resize-and-crop jitter or flips on the training split')
    .option('--drop-last', 'drop the last partial batch of each epoch')
    .option('--max-steps <n>', 'stop each epoch after n steps (0: the whole split)', intArg, 0)
    .option('--seed <n>', 'seed of the weights, data order and augmentation', intArg, 1)
    .option(
      '--micro-batch <n>',
      'hold activations of at most n pairs at once, summing gradients (exact with instance norm; 0: whole batch; wasm default 4)',
      intArg,
      0,
    )
    .addOption(
      new Option('--backend <name>', 'tfjs backend: auto = native, else wasm')
        .choices(BACKENDS)
        .default('auto'),
    );
}

export interface TrainFlags {
  size: number;
  batchSize: number;
  epochs: number;
  epochsDecay: number;
  netD: TrainConfig['netD'];
  norm: TrainConfig['norm'];
  ganMode: TrainConfig['ganMode'];
  lambda: number;
  lr: number;
  beta1: number;
  direction: TrainConfig['direction'];
  augment: boolean;
  dropLast?: boolean;
  maxSteps: number;
  seed: number;
  microBatch: number;
  backend: BackendChoice;
}

export function configFromFlags(f: TrainFlags, data: string, out: string): TrainConfig {
  return validateConfig({
    data,
    out,
    size: f.size,
    batchSize: f.batchSize,
    epochs: f.epochs,
    epochsDecay: f.epochsDecay,
    netD: f.netD,
    norm: f.norm,
    ganMode: f.ganMode,
    lambdaL1: f.lambda,
    lr: f.lr,
    beta1: f.beta1,
    direction: f.direction,
    augment: f.augment,
    dropLast: f.dropLast ?? false,
    maxStepsPerEpoch: f.maxSteps,
    microBatch: f.microBatch,
    seed: f.seed,
    backend: f.backend,
  });
}

/** Chooses the backend, trains with a progress bar, and returns the per-epoch summaries. */
export async function runTraining(config: TrainConfig, resume: boolean): Promise<EpochEvent[]> {
  await startBackend(config.backend);
  const progress = new ProgressReporter();
  return train(config, resume, {
    log: consoleLogger,
    onStep: (e) => progress.step(e),
    onEpoch: (e) => progress.epoch(e),
  });
}

export function trainCommand(): Command {
  return addTrainOptions(
    new Command('train')
      .description('Train pix2pix (UNet generator + PatchGAN) on a paired dataset')
      .requiredOption('--data <dir>', 'dataset folder (train/{A,B}, test/{A,B}, dataset.json)')
      .requiredOption('--out <dir>', 'run folder: config.json, metrics.jsonl, checkpoints/, samples/')
      .option('--resume', 'continue the run in --out from its latest checkpoint')
      .option('--json', 'print one JSON result line last'),
  ).action(async (f: TrainFlags & { data: string; out: string; resume?: boolean; json?: boolean }) => {
    const config = configFromFlags(f, f.data, f.out);
    const epochs = await runTraining(config, f.resume ?? false);
    if (f.json) process.stdout.write(`${JSON.stringify({ out: config.out, epochs })}\n`);
  });
}
