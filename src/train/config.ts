import { BACKENDS, type BackendChoice } from '../backend/choices.js';
import { DIRECTIONS, type Direction } from '../data/types.js';
import { NORMS, type NormKind } from '../models/layers.js';
import { DISCRIMINATORS, type DiscriminatorKind } from '../models/patchgan.js';
import { resolveUnetDepth, unetDepth } from '../models/unet.js';
import { UserError } from '../util/log.js';
import { GAN_MODES, type GanMode } from './losses.js';

/** Everything a training run depends on; saved as the run's config.json. Defaults are the reference's. */
export interface TrainConfig {
  /** Dataset directory (train/{A,B}, test/{A,B}). */
  data: string;
  /** Run directory. */
  out: string;
  size: number;
  batchSize: number;
  /** Epochs at the initial learning rate. */
  epochs: number;
  /** Further epochs over which the learning rate decays linearly to 0 (pix2pix's n_epochs_decay). */
  epochsDecay: number;
  netD: DiscriminatorKind;
  norm: NormKind;
  /** Channels of the generator's first level: ngf, 2ngf, 4ngf, then 8ngf (64: the reference's 64..512). */
  ngf: number;
  /** Generator down levels; 0 = log2 of the training side (--crop, else --size): a 1x1 bottleneck. */
  depth: number;
  /** Dropout 0.5 on the generator's 8ngf-channel levels (the reference's). */
  dropout: boolean;
  /** The generator predicts a correction: output = clip(input + G'(input), -1, 1). */
  residual: boolean;
  /** With `residual`: output = clip(blur(input) + G'(input), -1, 1), a Gaussian blur of this sigma in px (0: none). */
  residualBlur: number;
  ganMode: GanMode;
  /**
   * Epochs at the start trained on lambda * L1 alone: D neither runs nor learns (about half a step's
   * time), and the adversarial game starts from a generator that already does the task.
   */
  l1Warmup: number;
  lambdaL1: number;
  lr: number;
  beta1: number;
  beta2: number;
  direction: Direction;
  /** Resize to 1.12x + random crop, and horizontal flip, on the training split. */
  augment: boolean;
  /**
   * Train on random crop x crop px crops of the (augmented) images, fresh every step (0 = whole
   * images). The networks train at this side; `size` stays the side of evaluation, samples and the
   * saved generator's input (the UNet is fully convolutional, so the same weights run at both).
   */
  crop: number;
  /**
   * Re-draw the dataset's synthetic degradation (dataset.json) from the clean B side whenever a training
   * pair is loaded, seeded by (seed, epoch, pair), instead of reading the prepared A. Test split unchanged.
   */
  degradeOnTheFly: boolean;
  dropLast: boolean;
  seed: number;
  backend: BackendChoice;
  /**
   * Largest number of pairs whose activations are held at once: bigger batches are split and their
   * gradients summed, which is exact with per-sample norms. 0 = chosen by `train` from the memory it
   * can use; a run's config.json records the value actually used.
   */
  microBatch: number;
  /** Stop each epoch after this many steps (0 = the whole split); for demos and smoke runs. */
  maxStepsPerEpoch: number;
  /**
   * Stop the run once this many minutes of training (the run's trainSeconds over all resumes, without
   * evaluations) have passed: a checkpoint (mid-epoch if need be), an evaluation if --eval-every is
   * set, and a normal return. 0 = no limit.
   */
  maxMinutes: number;
  /** Evaluate the test split every N epochs during training (0 = never). */
  evalEvery: number;
  /** Also write a (resume-only) checkpoint every N steps within an epoch (0 = at epoch ends only). */
  saveEverySteps: number;
  /** Keep only the last N epoch checkpoints, plus the best by PSNR where evaluated (0 = keep all). */
  keep: number;
}

/** What a train option is: its value kind decides parsing, validation and the CLI flag's shape. */
type OptionKind =
  | { kind: 'int'; min: number }
  | { kind: 'number'; min: number; below?: number }
  | { kind: 'choice'; choices: readonly string[] }
  | { kind: 'flag' };

/** One training option: its config key, its CLI flag, its default, its help, its validation. */
export type TrainOption = {
  [K in keyof TrainConfig]: {
    key: K;
    /** The CLI name without dashes (`batch-size`); a `flag` defaulting to true is given as `--no-<flag>`. */
    flag: string;
    default: TrainConfig[K];
    help: string;
    /** Defines the model or the data: `--resume` refuses to change it. */
    fixed?: true;
  } & OptionKind;
}[keyof TrainConfig];

/**
 * Every training option, once. The CLI (`train`, `demo`, `compare`), DEFAULT_CONFIG, validateConfig and
 * `compare --vary` are all built from this table, so a default or a choice is written here only.
 */
export const TRAIN_OPTIONS: readonly TrainOption[] = [
  {
    key: 'size',
    fixed: true,
    flag: 'size',
    kind: 'int',
    min: 32,
    default: 256,
    help: 'image side of training (unless --crop), evaluation, samples and the saved generator (power of two >= 32)',
  },
  {
    key: 'batchSize',
    fixed: true,
    flag: 'batch-size',
    kind: 'int',
    min: 1,
    default: 1,
    help: 'pairs per step',
  },
  {
    key: 'epochs',
    flag: 'epochs',
    kind: 'int',
    min: 1,
    default: 200,
    help: 'epochs at the initial learning rate',
  },
  {
    key: 'epochsDecay',
    flag: 'epochs-decay',
    kind: 'int',
    min: 0,
    default: 0,
    help: 'further epochs with the learning rate decaying linearly to 0',
  },
  {
    key: 'netD',
    fixed: true,
    flag: 'netD',
    kind: 'choice',
    choices: DISCRIMINATORS,
    default: 'patch16',
    help: 'discriminator',
  },
  {
    key: 'norm',
    fixed: true,
    flag: 'norm',
    kind: 'choice',
    choices: NORMS,
    default: 'instance',
    help: 'normalisation layers',
  },
  {
    key: 'ngf',
    fixed: true,
    flag: 'ngf',
    kind: 'int',
    min: 1,
    default: 64,
    help: "width of the generator's first level: levels of n, 2n, 4n, then 8n channels (64: 64 .. 512)",
  },
  {
    key: 'depth',
    fixed: true,
    flag: 'depth',
    kind: 'int',
    min: 0,
    default: 0,
    help: 'generator down levels, each halving the image (0: log2 of the training side, a 1x1 bottleneck; fewer: a larger one)',
  },
  {
    key: 'dropout',
    fixed: true,
    flag: 'dropout',
    kind: 'flag',
    default: true,
    help: "no dropout in the generator (the reference's 0.5 on its 8n-channel levels)",
  },
  {
    key: 'residual',
    fixed: true,
    flag: 'residual',
    kind: 'flag',
    default: false,
    help: 'the generator predicts a correction: output = clip(input + G(input), -1, 1)',
  },
  {
    key: 'residualBlur',
    fixed: true,
    flag: 'residual-blur',
    kind: 'number',
    min: 0,
    default: 0,
    help: 'with --residual: add the correction to a Gaussian blur (sigma in px) of the input instead, so G need not reproduce the noise it removes (0: the input itself)',
  },
  {
    key: 'ganMode',
    fixed: true,
    flag: 'gan-mode',
    kind: 'choice',
    choices: GAN_MODES,
    default: 'vanilla',
    help: 'GAN loss',
  },
  {
    key: 'l1Warmup',
    flag: 'l1-warmup',
    kind: 'int',
    min: 0,
    default: 0,
    help: 'train the first n epochs on the L1 term alone (D off), then the full GAN + L1 loss',
  },
  { key: 'lambdaL1', flag: 'lambda', kind: 'number', min: 0, default: 100, help: 'weight of the L1 term' },
  { key: 'lr', flag: 'lr', kind: 'number', min: 0, default: 2e-4, help: 'Adam learning rate' },
  { key: 'beta1', flag: 'beta1', kind: 'number', min: 0, below: 1, default: 0.5, help: 'Adam beta1' },
  { key: 'beta2', flag: 'beta2', kind: 'number', min: 0, below: 1, default: 0.999, help: 'Adam beta2' },
  {
    key: 'direction',
    fixed: true,
    flag: 'direction',
    kind: 'choice',
    choices: DIRECTIONS,
    default: 'AtoB',
    help: 'AtoB: A is the input',
  },
  {
    key: 'augment',
    flag: 'augment',
    kind: 'flag',
    default: true,
    help: 'no resize-and-crop jitter or flips on the training split',
  },
  {
    // Fixed: it changes no weight's shape, but it is the data the run learns from, and it sets the
    // default --depth and the side D is built at.
    key: 'crop',
    fixed: true,
    flag: 'crop',
    kind: 'int',
    min: 0,
    default: 0,
    help: 'train on random n x n crops, fresh every step (a power of two >= 32, <= --size; --size stays the evaluation size; 0: whole images)',
  },
  {
    // Fixed: it defines the training data (fresh noise every epoch instead of the prepared A).
    key: 'degradeOnTheFly',
    fixed: true,
    flag: 'degrade-on-the-fly',
    kind: 'flag',
    default: false,
    help: "re-draw the dataset's synthetic degradation (dataset.json) from the clean side whenever a training pair is loaded (seeded by seed, epoch, pair); the test split stays as prepared",
  },
  {
    key: 'dropLast',
    flag: 'drop-last',
    kind: 'flag',
    default: false,
    help: 'drop the last partial batch of each epoch',
  },
  {
    key: 'maxStepsPerEpoch',
    flag: 'max-steps',
    kind: 'int',
    min: 0,
    default: 0,
    help: 'stop each epoch after n steps (0: the whole split)',
  },
  {
    key: 'maxMinutes',
    flag: 'max-minutes',
    kind: 'number',
    min: 0,
    default: 0,
    help: 'stop once the run has trained this many minutes (fractions allowed): checkpoint, evaluate if --eval-every is set, exit 0 (0: no limit)',
  },
  {
    key: 'seed',
    fixed: true,
    flag: 'seed',
    kind: 'int',
    min: 0,
    default: 1,
    help: 'seed of the weights, data order and augmentation',
  },
  {
    key: 'microBatch',
    flag: 'micro-batch',
    kind: 'int',
    min: 0,
    default: 0,
    help: 'hold activations of at most n pairs at once, summing gradients (exact with instance norm; 0: chosen from the memory available)',
  },
  {
    key: 'evalEvery',
    flag: 'eval-every',
    kind: 'int',
    min: 0,
    default: 0,
    help: 'evaluate the test split (PSNR, SSIM, MAE) every n epochs, into eval.csv (0: never)',
  },
  {
    key: 'saveEverySteps',
    flag: 'save-every-steps',
    kind: 'int',
    min: 0,
    default: 0,
    help: 'also checkpoint every n steps within an epoch, for resuming (0: at epoch ends only)',
  },
  {
    key: 'keep',
    flag: 'keep',
    kind: 'int',
    min: 0,
    default: 0,
    help: 'keep the last n epoch checkpoints and the best by PSNR (eval.csv), delete older ones (0: keep all)',
  },
  {
    key: 'backend',
    flag: 'backend',
    kind: 'choice',
    choices: BACKENDS,
    default: 'auto',
    help: 'tfjs backend: auto = webgpu on a hardware GPU adapter, else native, else wasm',
  },
];

export const DEFAULT_CONFIG: TrainConfig = Object.fromEntries([
  ['data', ''],
  ['out', 'runs/default'],
  ...TRAIN_OPTIONS.map((o) => [o.key, o.default]),
]) as TrainConfig;

/** The option named `--flag` (also accepts the config key, e.g. `batchSize`). */
export function trainOption(name: string): TrainOption | undefined {
  const bare = name.replace(/^--/, '').replace(/^no-/, '');
  return TRAIN_OPTIONS.find((o) => o.flag === bare || o.key === bare);
}

/** Parses a textual value of an option (as `compare --vary` gives it); undefined when it is not one. */
export function parseOptionValue(o: TrainOption, text: string): TrainConfig[keyof TrainConfig] | undefined {
  const t = text.trim();
  switch (o.kind) {
    case 'int':
    case 'number': {
      const n = Number(t);
      return t === '' || !Number.isFinite(n) || (o.kind === 'int' && !Number.isInteger(n)) ? undefined : n;
    }
    case 'flag':
      return t === 'true' ? true : t === 'false' ? false : undefined;
    case 'choice':
      return t;
  }
}

/** Problems with one option's value, as `--flag ...` phrases; empty when valid. */
function checkOption(o: TrainOption, v: unknown): string[] {
  const name = `--${o.flag}`;
  switch (o.kind) {
    case 'int':
      return Number.isInteger(v) && (v as number) >= o.min
        ? []
        : [`${name} must be an integer >= ${o.min} (got ${v})`];
    case 'number': {
      const ok =
        typeof v === 'number' && Number.isFinite(v) && v >= o.min && (o.below === undefined || v < o.below);
      const range = o.below === undefined ? `>= ${o.min}` : `in [${o.min}, ${o.below})`;
      return ok ? [] : [`${name} must be a finite number ${range} (got ${v})`];
    }
    case 'choice':
      return o.choices.includes(v as string) ? [] : [`${name} '${v}' is not one of ${o.choices.join(', ')}`];
    case 'flag':
      return typeof v === 'boolean' ? [] : [`${name} must be true or false (got ${v})`];
  }
}

export { PRESET_NAMES, PRESETS, type PresetName } from './presets.js';

/** Fills defaults and rejects every invalid field at once, in one UserError. */
export function validateConfig(partial: Partial<TrainConfig>): TrainConfig {
  const c: TrainConfig = { ...DEFAULT_CONFIG, ...partial };
  const errors = TRAIN_OPTIONS.flatMap((o) => checkOption(o, c[o.key]));
  if (c.residualBlur > 0 && !c.residual) {
    errors.push(
      `--residual-blur ${c.residualBlur} needs --residual (it is the blur the correction is added to)`,
    );
  }
  if (c.microBatch > 0 && c.microBatch < c.batchSize && c.norm === 'batch') {
    errors.push(
      `--norm batch needs the whole batch at once, so --micro-batch ${c.microBatch} < --batch-size ${c.batchSize} cannot be used: use --norm instance or none`,
    );
  }
  if (Number.isInteger(c.size)) {
    try {
      unetDepth(c.size);
      if (c.crop !== 0 && Number.isInteger(c.crop)) {
        if (!(c.crop >= 32 && c.crop <= c.size && Number.isInteger(Math.log2(c.crop)))) {
          throw new UserError(`--crop ${c.crop} must be a power of two from 32 to --size ${c.size} (or 0)`);
        }
      }
      if (Number.isInteger(c.depth) && c.depth >= 0) resolveUnetDepth(trainingSide(c), c.depth);
    } catch (e) {
      errors.push((e as Error).message);
    }
  }
  if (errors.length) throw new UserError(`invalid training options: ${errors.join('; ')}`);
  return c;
}

/** An option with its value as typed: `--size 64`, `--residual`, `--no-dropout`. */
function optionText(o: TrainOption, v: unknown): string {
  return o.kind === 'flag' ? `--${v ? '' : 'no-'}${o.flag}` : `--${o.flag} ${v}`;
}

/** Side of the images the networks train on: --crop, else --size. */
export const trainingSide = (c: Pick<TrainConfig, 'size' | 'crop'>): number => c.crop || c.size;

/** The generator's number of down levels: --depth, or log2 of the training side when it is 0. */
export const generatorDepth = (c: Pick<TrainConfig, 'size' | 'crop' | 'depth'>): number =>
  resolveUnetDepth(trainingSide(c), c.depth);

/**
 * The config a resumed run continues with: the run's own config.json, with only the options given
 * this time (`given`) applied. Options that define the model or the data (`fixed`) cannot change: a
 * differing one is a one-line UserError naming it. Returns the validated config and what changed.
 */
export function resumedConfig(
  saved: TrainConfig,
  given: Partial<TrainConfig>,
): { config: TrainConfig; changed: ConfigChanges } {
  // Runs from before an option existed had its default.
  saved = { ...DEFAULT_CONFIG, ...saved };
  const refused: string[] = [];
  const next: Record<string, unknown> = {
    ...saved,
    out: given.out ?? saved.out,
    data: given.data ?? saved.data,
  };
  for (const o of TRAIN_OPTIONS) {
    if (!(o.key in given) || given[o.key] === saved[o.key]) continue;
    if (o.fixed) {
      const had = o.kind === 'flag' ? optionText(o, saved[o.key]) : saved[o.key];
      refused.push(`${optionText(o, given[o.key])} (the run has ${had})`);
    } else next[o.key] = given[o.key];
  }
  if (refused.length) {
    throw new UserError(
      `--resume cannot change what defines the model or the data: ${refused.join(', ')}; drop the flag or start a new run with another --out`,
    );
  }
  const config = validateConfig(next as Partial<TrainConfig>);
  return { config, changed: configChanges(saved, config) };
}

/** Options whose values differ between two configs, by flag. */
export type ConfigChanges = Record<string, { from: unknown; to: unknown }>;

export function configChanges(from: TrainConfig, to: TrainConfig): ConfigChanges {
  // An option missing from an older config.json had its default.
  const value = (c: TrainConfig, o: TrainOption) => c[o.key] ?? o.default;
  return Object.fromEntries(
    TRAIN_OPTIONS.filter((o) => value(from, o) !== value(to, o)).map((o) => [
      o.flag,
      { from: value(from, o), to: value(to, o) },
    ]),
  );
}

/** pix2pix's linear policy: constant for `epochs`, then linearly to 0 over `epochsDecay` (epoch is 1-based). */
export function learningRateAt(c: TrainConfig, epoch: number): number {
  return c.lr * (1 - Math.max(0, epoch - c.epochs) / (c.epochsDecay + 1));
}
