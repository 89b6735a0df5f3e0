// Whether a run is training, stopped or finished, from its folder alone: the dashboard used to guess
// from file times, which called a finished run "training" for minutes and a stalled one "idle".
import { listCheckpoints } from './checkpoints.js';
import { readSavedRun } from './folder.js';
import { type LockHolder, readRunLock } from './lock.js';

/**
 * - `training`: run.lock names a running process (or one on another machine, which cannot be checked
 *   from here: `holder.host` says which);
 * - `finished`: not training, and the newest epoch checkpoint is at the configured epochs + epochsDecay;
 * - `stopped`: anything else (interrupted, out of time, or killed): `--resume` continues it from its
 *   latest checkpoint, or starts it over when it has none.
 */
export type RunStateName = 'training' | 'stopped' | 'finished';

export interface RunState {
  state: RunStateName;
  /** The newest whole epoch with a checkpoint. */
  epoch?: number;
  /** Epochs the run is configured for (config.json: epochs + epochsDecay). */
  totalEpochs?: number;
  /** The training process, when `training`. */
  holder?: LockHolder;
  /** Set when the holder is on another machine: its process could not be checked. */
  otherHost?: boolean;
}

/** The epochs a run's config.json asks for, or undefined when it has none or it is unreadable. */
async function configuredEpochs(runDir: string): Promise<number | undefined> {
  const c = (await readSavedRun(runDir).catch(() => undefined))?.config;
  if (typeof c?.epochs !== 'number') return undefined;
  return c.epochs + (typeof c.epochsDecay === 'number' ? c.epochsDecay : 0);
}

/** What `runDir`'s lock, checkpoints and config.json say of it now (see RunStateName). */
export async function runState(runDir: string): Promise<RunState> {
  const [lock, checkpoints, totalEpochs] = await Promise.all([
    readRunLock(runDir),
    listCheckpoints(runDir),
    configuredEpochs(runDir),
  ]);
  const epoch = checkpoints.at(-1)?.epoch;
  const known = {
    ...(epoch !== undefined && { epoch }),
    ...(totalEpochs !== undefined && { totalEpochs }),
  };
  if (lock && lock.running !== false) {
    return {
      state: 'training',
      ...known,
      holder: lock.holder,
      ...(lock.running === undefined && { otherHost: true }),
    };
  }
  const finished = epoch !== undefined && totalEpochs !== undefined && epoch >= totalEpochs;
  return { state: finished ? 'finished' : 'stopped', ...known };
}
