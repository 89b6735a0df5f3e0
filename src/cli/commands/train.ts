import { Command, InvalidArgumentError, Option } from 'commander';
import { epochEvaluator } from '../../eval/evaluate.js';
import { readEvalCsv, readSavedRun, runConfigPath } from '../../run/folder.js';
import { CHECKPOINTS_DIR, METRICS_FILE, RUN_CONFIG, SAMPLES_DIR } from '../../run/layout.js';
import { bestByPsnr } from '../../run/records.js';
import {
  PRESET_NAMES,
  PRESETS,
  type PresetName,
  resumedConfig,
  TRAIN_OPTIONS,
  type TrainConfig,
  type TrainOption,
  validateConfig,
} from '../../train/config.js';
import { type EpochEvent, type TrainHooks, train } from '../../train/loop.js';
import { consoleLogger, UserError } from '../../util/log.js';
import { floatArg, intArg } from '../args.js';
import { startBackend } from '../backend.js';
import { ProgressReporter } from '../progress.js';

/** The commander option of a train option, with its parser, choices and default from the table. */
export function cliOption(o: TrainOption): Option {
  if (o.kind === 'flag') {
    // A flag that is on by default is switched off with --no-<flag> (commander's negatable form).
    return o.default ? new Option(`--no-${o.flag}`, o.help) : new Option(`--${o.flag}`, o.help);
  }
  const value = o.kind === 'choice' ? 'kind' : o.kind === 'text' ? 'spec' : 'n';
  const opt = new Option(`--${o.flag} <${value}>`, o.help).default(o.default);
  if (o.kind === 'choice') return opt.choices(o.choices);
  if (o.kind === 'text') return opt;
  const parse = o.kind === 'int' ? intArg : floatArg;
  return opt.argParser((v: string) => {
    const n = parse(v);
    if (n < o.min) throw new InvalidArgumentError(`must be >= ${o.min}`);
    return n;
  });
}

/** The training options shared by `train`, `demo` and `compare`, all from TRAIN_OPTIONS, and `--preset`. */
export function addTrainOptions(cmd: Command): Command {
  for (const o of TRAIN_OPTIONS) {
    cmd.addOption(cliOption(o));
    // A flag that is off by default can be switched off again where a --preset turns it on.
    if (
      o.kind === 'flag' &&
      !o.default &&
      PRESET_NAMES.some((n) => (PRESETS[n] as Partial<TrainConfig>)[o.key])
    ) {
      cmd.addOption(new Option(`--no-${o.flag}`, `not --${o.flag} (where a --preset sets it)`));
    }
  }
  const presets = PRESET_NAMES.map(
    (n) =>
      `${n}: ${Object.entries(PRESETS[n])
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}`,
  );
  cmd.addOption(
    new Option(
      '--preset <name>',
      `start from a named set of option values instead of the reference's defaults; options typed here still win (${presets.join('; ')})`,
    ).choices(PRESET_NAMES),
  );
  return cmd;
}

/**
 * commander's parsed values -> a validated config (each option's attribute name comes from its flag).
 * With `--preset`, an option not typed on the command line (per `cmd`) takes the preset's value.
 */
export function configFromFlags(
  flags: Record<string, unknown>,
  data: string,
  out: string,
  cmd?: Command,
): TrainConfig {
  const partial: Record<string, unknown> = { data, out };
  const preset: Partial<TrainConfig> = flags.preset ? PRESETS[flags.preset as PresetName] : {};
  const typed = new Set<keyof TrainConfig>();
  for (const o of TRAIN_OPTIONS) {
    const attr = cliOption(o).attributeName();
    if (cmd?.getOptionValueSource(attr) === 'cli') typed.add(o.key);
    const v = !typed.has(o.key) && o.key in preset ? preset[o.key] : flags[attr];
    if (v !== undefined) partial[o.key] = v;
  }
  // The preset's shrink needs its noise drawn after it: switching that off (--no-degrade-on-the-fly)
  // takes the preset's --scale-jitter with it, unless that was typed too.
  if (partial.degradeOnTheFly === false && 'scaleJitter' in preset && !typed.has('scaleJitter')) {
    delete partial.scaleJitter;
  }
  return validateConfig(partial as Partial<TrainConfig>);
}

/**
 * `train --resume`: the run's own config.json, with only the options typed this time applied (a
 * model- or data-defining one that differs is refused, as train() itself refuses it for a library
 * caller); a run without config.json starts from the flags.
 */
async function configForResume(f: Record<string, unknown> & { data: string; out: string }, cmd: Command) {
  const saved = (
    await readSavedRun<TrainConfig>(f.out).catch((e: Error) => {
      throw new UserError(`cannot resume: ${e.message}`);
    })
  )?.config;
  if (!saved) return configFromFlags(f, f.data, f.out, cmd);
  const given: Record<string, unknown> = { data: f.data, out: f.out };
  for (const o of TRAIN_OPTIONS) {
    const attr = cliOption(o).attributeName();
    if (cmd.getOptionValueSource(attr) === 'cli') given[o.key] = f[attr];
  }
  const { config, changed } = resumedConfig(saved, given as Partial<TrainConfig>);
  const list = Object.entries(changed).map(([k, v]) => `--${k} ${v.from} -> ${v.to}`);
  consoleLogger.info(
    `resuming with ${runConfigPath(f.out)}${list.length ? `, changed: ${list.join(', ')}` : ' as it is'}`,
  );
  return config;
}

/** Chooses the backend, trains with a progress bar, and returns the per-epoch summaries. */
export async function runTraining(config: TrainConfig, resume: boolean): Promise<EpochEvent[]> {
  await startBackend(config.backend);
  return trainWithProgress(config, resume);
}

/** Trains on the backend already chosen, with a progress bar and `--eval-every` evaluations. */
/** `train` with the CLI's progress, signals and evaluation; `extra` hooks run beside them. */
export async function trainWithProgress(
  config: TrainConfig,
  resume: boolean,
  extra: Pick<TrainHooks, 'onStep' | 'onEpoch' | 'takeOverLock'> = {},
): Promise<EpochEvent[]> {
  const progress = new ProgressReporter();
  // Ctrl-C or a TERM finishes the current step and writes a checkpoint there; a second one quits at once.
  let stop: 'SIGINT' | 'SIGTERM' | undefined;
  const handler = (signal: 'SIGINT' | 'SIGTERM') => () => {
    if (stop) process.exit(signal === 'SIGINT' ? 130 : 143);
    stop = signal;
    consoleLogger.info(`\n${signal}: finishing this step, then writing a checkpoint (again to quit at once)`);
  };
  const onInt = handler('SIGINT');
  const onTerm = handler('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  try {
    return await train(config, resume, {
      log: consoleLogger,
      evaluate: config.evalEvery > 0 ? epochEvaluator(config, { log: consoleLogger }) : undefined,
      onStep: (e) => {
        progress.step(e);
        extra.onStep?.(e);
      },
      onEpoch: (e) => {
        progress.epoch(e);
        extra.onEpoch?.(e);
      },
      takeOverLock: extra.takeOverLock,
      shouldStop: () => stop,
      keepAlso: async () => {
        const best = bestByPsnr(await readEvalCsv(config.out));
        return best ? [best.epoch] : [];
      },
    });
  } finally {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  }
}

export function trainCommand(): Command {
  return addTrainOptions(
    new Command('train')
      .description('Train pix2pix (UNet generator + PatchGAN) on a paired dataset')
      .requiredOption('--data <dir>', 'dataset folder (train/{A,B}, test/{A,B}, dataset.json)')
      .requiredOption(
        '--out <dir>',
        `run folder: ${RUN_CONFIG}, ${METRICS_FILE}, ${CHECKPOINTS_DIR}/, ${SAMPLES_DIR}/`,
      )
      .option('--resume', 'continue the run in --out from its latest checkpoint')
      .option('--json', 'print one JSON result line last'),
  ).action(
    async (
      f: Record<string, unknown> & { data: string; out: string; resume?: boolean; json?: boolean },
      cmd: Command,
    ) => {
      const config = f.resume ? await configForResume(f, cmd) : configFromFlags(f, f.data, f.out, cmd);
      const epochs = await runTraining(config, f.resume ?? false);
      if (f.json) process.stdout.write(`${JSON.stringify({ out: config.out, epochs })}\n`);
    },
  );
}
