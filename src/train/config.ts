import { BACKENDS } from '../backend/choices.js';
import { parseDegradationWith } from '../data/degrade-core.js';
import { DIRECTIONS } from '../data/types.js';
import { NORMS } from '../models/layers.js';
import { DISCRIMINATORS } from '../models/patchgan.js';
import { resolveUnetDepth, unetDepth } from '../models/unet.js';
import { UserError } from '../util/log.js';
import { GAN_MODES } from './losses.js';

/** What a train option is: its value kind decides parsing, validation and the CLI flag's shape. */
type OptionKind =
  | { kind: 'int'; min: number; default: number }
  | { kind: 'number'; min: number; below?: number; default: number }
  | { kind: 'choice'; choices: readonly string[]; default: string }
  | { kind: 'flag'; default: boolean }
  | { kind: 'text'; default: string };

interface OptionSpec {
  /** The CLI name without dashes (`batch-size`); a `flag` defaulting to true is given as `--no-<flag>`. */
  flag: string;
  help: string;
  /** Defines the model or the data: `--resume` refuses to change it. */
  fixed?: true;
}

/** The value an option's kind holds: a choice holds one of its choices. */
type OptionValue<O> = O extends { kind: 'int' | 'number' }
  ? number
  : O extends { kind: 'flag' }
    ? boolean
    : O extends { kind: 'text' }
      ? string
      : O extends { choices: readonly (infer C)[] }
        ? C
        : never;

/**
 * Every training option, once, by its config key: TrainConfig's fields are derived from this table
 * (their types from `kind`, their doc comments from these, which the editor shows on `config.<key>`),
 * and the CLI (`train`, `demo`, `compare`), DEFAULT_CONFIG, validateConfig and `compare --vary` are all
 * built from it, so a key, a default or a choice is written here only. `help` is the CLI's text; a doc
 * comment says what it does not.
 */
const OPTIONS = {
  /** Also the side of evaluation, samples and the saved generator's input. */
  size: {
    fixed: true,
    flag: 'size',
    kind: 'int',
    min: 32,
    default: 256,
    help: 'image side of training (unless --crop), evaluation, samples and the saved generator (power of two >= 32)',
  },
  batchSize: {
    fixed: true,
    flag: 'batch-size',
    kind: 'int',
    min: 1,
    default: 1,
    help: 'pairs per step',
  },
  epochs: {
    flag: 'epochs',
    kind: 'int',
    min: 1,
    default: 200,
    help: 'epochs at the initial learning rate',
  },
  /** pix2pix's n_epochs_decay. */
  epochsDecay: {
    flag: 'epochs-decay',
    kind: 'int',
    min: 0,
    default: 0,
    help: 'further epochs with the learning rate decaying linearly to 0',
  },
  netD: {
    fixed: true,
    flag: 'netD',
    kind: 'choice',
    choices: DISCRIMINATORS,
    default: 'patch16',
    help: 'discriminator',
  },
  norm: {
    fixed: true,
    flag: 'norm',
    kind: 'choice',
    choices: NORMS,
    default: 'instance',
    help: 'normalisation layers',
  },
  /** Channels of the generator's first level: ngf, 2ngf, 4ngf, then 8ngf. */
  ngf: {
    fixed: true,
    flag: 'ngf',
    kind: 'int',
    min: 1,
    default: 64,
    help: "width of the generator's first level: levels of n, 2n, 4n, then 8n channels (64: 64 .. 512)",
  },
  /** 0 = log2 of the training side (--crop, else --size). */
  depth: {
    fixed: true,
    flag: 'depth',
    kind: 'int',
    min: 0,
    default: 0,
    help: 'generator down levels, each halving the image (0: log2 of the training side, a 1x1 bottleneck; fewer: a larger one)',
  },
  /** Channels of the discriminator's first stage: ndf, 2ndf, 4ndf, 8ndf (pix2pix's --ndf). */
  ndf: {
    fixed: true,
    flag: 'ndf',
    kind: 'int',
    min: 1,
    default: 64,
    help: "width of the discriminator's first stage: stages of n, 2n, 4n and 8n channels (64: 64 .. 512)",
  },
  /** Dropout 0.5 on the generator's 8ngf-channel levels (the reference's); the flag is --no-dropout. */
  dropout: {
    fixed: true,
    flag: 'dropout',
    kind: 'flag',
    default: true,
    help: "no dropout in the generator (the reference's 0.5 on its 8n-channel levels)",
  },
  residual: {
    fixed: true,
    flag: 'residual',
    kind: 'flag',
    default: false,
    help: 'the generator predicts a correction: output = clip(input + G(input), -1, 1)',
  },
  /** A stride-1 level at the image's own side around the UNet (models/unet.ts's fullRes). */
  fullRes: {
    fixed: true,
    flag: 'full-res',
    kind: 'flag',
    default: false,
    help: "add a level at the image's own side to the generator (a stride-1 conv block before the first down level, skipped to the last up level), so per-pixel detail is not rebuilt from half the side",
  },
  /** With `residual`: output = clip(blur(input) + G'(input), -1, 1). */
  residualBlur: {
    fixed: true,
    flag: 'residual-blur',
    kind: 'number',
    min: 0,
    default: 0,
    help: 'with --residual: add the correction to a Gaussian blur (sigma in px) of the input instead, so G need not reproduce the noise it removes (0: the input itself)',
  },
  ganMode: {
    fixed: true,
    flag: 'gan-mode',
    kind: 'choice',
    choices: GAN_MODES,
    default: 'vanilla',
    help: 'GAN loss',
  },
  /**
   * D neither runs nor learns in these epochs (about half a step's time), and the adversarial game
   * starts from a generator that already does the task.
   */
  l1Warmup: {
    flag: 'l1-warmup',
    kind: 'int',
    min: 0,
    default: 0,
    help: 'train the first n epochs on the L1 term alone (D off), then the full GAN + L1 loss',
  },
  lambdaL1: { flag: 'lambda', kind: 'number', min: 0, default: 100, help: 'weight of the L1 term' },
  lr: { flag: 'lr', kind: 'number', min: 0, default: 2e-4, help: 'Adam learning rate' },
  beta1: { flag: 'beta1', kind: 'number', min: 0, below: 1, default: 0.5, help: 'Adam beta1' },
  beta2: { flag: 'beta2', kind: 'number', min: 0, below: 1, default: 0.999, help: 'Adam beta2' },
  direction: {
    fixed: true,
    flag: 'direction',
    kind: 'choice',
    choices: DIRECTIONS,
    default: 'AtoB',
    help: 'AtoB: A is the input',
  },
  /** Resize to 1.12x + random crop, and horizontal flip; the flag is --no-augment. */
  augment: {
    flag: 'augment',
    kind: 'flag',
    default: true,
    help: 'no resize-and-crop jitter or flips on the training split',
  },
  /**
   * The networks train at this side; `size` stays the side of evaluation, samples and the saved
   * generator's input (the UNet is fully convolutional, so the same weights run at both). Fixed: it
   * changes no weight's shape, but it is the data the run learns from, and it sets the default --depth
   * and the side D is built at.
   */
  crop: {
    fixed: true,
    flag: 'crop',
    kind: 'int',
    min: 0,
    default: 0,
    help: 'train on random n x n crops, fresh every step (a power of two >= 32, <= --size; --size stays the evaluation size; 0: whole images)',
  },
  /** Fixed: it defines the training data (fresh noise every epoch instead of the prepared A). */
  degradeOnTheFly: {
    fixed: true,
    flag: 'degrade-on-the-fly',
    kind: 'flag',
    default: false,
    help: "re-draw the dataset's synthetic degradation (dataset.json) from the clean side whenever a training pair is loaded (seeded by seed, epoch, pair); the test split stays as prepared",
  },
  /** Fixed like --degrade-on-the-fly: it defines the training data. '' draws the dataset's own. */
  trainDegrade: {
    fixed: true,
    flag: 'train-degrade',
    kind: 'text',
    default: '',
    help: "with --degrade-on-the-fly: draw this degradation from the clean side instead of the dataset's (e.g. gaussian:5-50, a sigma per pair from 5 to 50, so one model serves those noise levels); the test split stays as prepared",
  },
  /**
   * Fixed like --degrade-on-the-fly: it defines the training data. Photos shrunk before the noise is
   * drawn pack more texture into a tile while the noise keeps its own scale: a large wallpaper's 256 px
   * tile is mostly smooth, a user's photo at its own size is not.
   */
  scaleJitter: {
    fixed: true,
    flag: 'scale-jitter',
    kind: 'number',
    min: 0,
    default: 1,
    help: "with --degrade-on-the-fly: shrink each training pair's clean side to a random fraction from this to 1 of its side (not below --crop) before the degradation is drawn and the crop cut (1: never)",
  },
  dropLast: {
    flag: 'drop-last',
    kind: 'flag',
    default: false,
    help: 'drop the last partial batch of each epoch',
  },
  /** For demos and smoke runs. */
  maxStepsPerEpoch: {
    flag: 'max-steps',
    kind: 'int',
    min: 0,
    default: 0,
    help: 'stop each epoch after n steps (0: the whole split)',
  },
  /** Counted in the run's trainSeconds over all resumes, without evaluations; a checkpoint is mid-epoch if need be. */
  maxMinutes: {
    flag: 'max-minutes',
    kind: 'number',
    min: 0,
    default: 0,
    help: 'stop once the run has trained this many minutes (fractions allowed): checkpoint, evaluate if --eval-every is set, exit 0 (0: no limit)',
  },
  seed: {
    fixed: true,
    flag: 'seed',
    kind: 'int',
    min: 0,
    default: 1,
    help: 'seed of the weights, data order and augmentation',
  },
  /**
   * Bigger batches are split and their gradients summed. 0 = chosen by `train` from the memory it can
   * use; a run's config.json records the value actually used.
   */
  microBatch: {
    flag: 'micro-batch',
    kind: 'int',
    min: 0,
    default: 0,
    help: 'hold activations of at most n pairs at once, summing gradients (exact with instance norm; 0: chosen from the memory available)',
  },
  evalEvery: {
    flag: 'eval-every',
    kind: 'int',
    min: 0,
    default: 0,
    help: 'evaluate the test split (PSNR, SSIM, MAE) every n epochs, into eval.csv (0: never)',
  },
  /** The mid-epoch checkpoints are for resuming only: no eval row or sample of their own. */
  saveEverySteps: {
    flag: 'save-every-steps',
    kind: 'int',
    min: 0,
    default: 0,
    help: 'also checkpoint every n steps within an epoch, for resuming (0: at epoch ends only)',
  },
  keep: {
    flag: 'keep',
    kind: 'int',
    min: 0,
    default: 0,
    help: 'keep the last n epoch checkpoints and the best by PSNR (eval.csv), delete older ones (0: keep all)',
  },
  backend: {
    flag: 'backend',
    kind: 'choice',
    choices: BACKENDS,
    default: 'auto',
    help: 'tfjs backend: auto = webgpu on a hardware GPU adapter, else native, else wasm',
  },
} as const satisfies Record<string, OptionSpec & OptionKind>;

type OptionValues = { -readonly [K in keyof typeof OPTIONS]: OptionValue<(typeof OPTIONS)[K]> };

/**
 * Everything a training run depends on; saved as the run's config.json. Defaults are the reference's.
 * Each option's field is declared once, in OPTIONS above.
 */
export interface TrainConfig extends OptionValues {
  /** Dataset directory (train/{A,B}, test/{A,B}). */
  data: string;
  /** Run directory. */
  out: string;
}

/** One training option: its config key, its CLI flag, its default, its help, its validation. */
export type TrainOption = {
  [K in keyof OptionValues]: OptionSpec & OptionKind & { key: K; default: OptionValues[K] };
}[keyof OptionValues];

/** OPTIONS with each default checked against its field's type: a choice's default is one of its choices. */
const CHECKED: {
  readonly [K in keyof OptionValues]: OptionSpec & OptionKind & { default: OptionValues[K] };
} = OPTIONS;

/** OPTIONS as a list, in its order (the order of the CLI's help). */
export const TRAIN_OPTIONS: readonly TrainOption[] = (Object.keys(CHECKED) as (keyof OptionValues)[]).map(
  (key) => ({ key, ...CHECKED[key] }) as TrainOption,
);

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
    case 'text':
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
    case 'text':
      return typeof v === 'string' ? [] : [`${name} must be text (got ${v})`];
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
  if (c.trainDegrade !== '') {
    if (!c.degradeOnTheFly) {
      errors.push(`--train-degrade ${c.trainDegrade} needs --degrade-on-the-fly (it is what that draws)`);
    }
    try {
      // Parsed only (no JPEG is encoded here), so that a bad spec fails before the run starts.
      parseDegradationWith(c.trainDegrade, { jpeg: async (img) => img });
    } catch (e) {
      errors.push(`--train-degrade: ${(e as Error).message}`);
    }
  }
  if (c.scaleJitter !== 1) {
    if (!(c.scaleJitter > 0 && c.scaleJitter <= 1)) {
      errors.push(`--scale-jitter must be in (0, 1] (got ${c.scaleJitter})`);
    } else if (!c.degradeOnTheFly) {
      errors.push(
        `--scale-jitter ${c.scaleJitter} needs --degrade-on-the-fly (the degradation is drawn after the shrink; --scale-jitter 1 turns it off)`,
      );
    }
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
