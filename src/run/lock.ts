// One trainer per run folder. Two processes training one --out would interleave their metrics.jsonl
// lines and overwrite each other's checkpoints, so `train` holds run.lock while it writes the run.
//
// The lock is a symlink whose target names the holder, `PID@HOST@SINCE` (as Emacs locks files):
// creating a symlink is atomic and fails when the name exists (what O_EXCL gives a file), and it
// carries its content with it, so there is never a lock whose holder cannot be read yet. It needs no
// data block either, so a full disk still lets a resume take the lock and report what it cannot write.
// Readers (eval, translate, export, serve) ignore it: a dangling link is no file to them.
import { randomBytes } from 'node:crypto';
import { readlinkSync, unlinkSync } from 'node:fs';
import { readlink, rename, rm, symlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { type Logger, UserError } from '../util/log.js';
import { RUN_LOCK } from './layout.js';

/** Who trains a run: the process, its machine, and since when (ISO 8601, whole seconds). */
export interface LockHolder {
  pid: number;
  host: string;
  since: string;
}

export const lockTarget = (h: LockHolder) => `${h.pid}@${h.host}@${h.since}`;

/** The holder a lock's target names, or undefined when it is not one `lockTarget` made. */
export function parseLockTarget(target: string): LockHolder | undefined {
  const m = /^(\d+)@([^@/]+)@([^@/]+)$/.exec(target);
  return m ? { pid: Number(m[1]), host: m[2]!, since: m[3]! } : undefined;
}

/** Whether process `pid` of this machine is running (one of another user counts: it exists). */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/**
 * Who holds run.lock in `runDir` and whether that process runs: `running` is undefined for a holder
 * on another machine, whose processes cannot be checked from here. Undefined when there is no lock,
 * or none pix2pix wrote (lockRun refuses those; a reader cannot tell whom they name).
 */
export async function readRunLock(
  runDir: string,
): Promise<{ holder: LockHolder; running: boolean | undefined } | undefined> {
  const target = await readlink(join(runDir, RUN_LOCK)).catch(() => undefined);
  const holder = target === undefined ? undefined : parseLockTarget(target);
  if (!holder) return undefined;
  return { holder, running: holder.host === hostname() ? isRunning(holder.pid) : undefined };
}

/** The run is trained by another process (which may stop soon: a queue tries such a cell again later). */
export class RunLockedError extends UserError {
  override name = 'RunLockedError';
}

/** A held run lock: release() removes it (only while it is still this holder's). */
export interface RunLock {
  readonly path: string;
  readonly holder: LockHolder;
  /** The holder whose lock this one took over: a trainer that died while it held the run. */
  readonly replaced?: LockHolder;
  release(): Promise<void>;
}

/** Tries at taking the lock while other processes race for it (each a removal of a dead holder's). */
const TAKEOVER_TRIES = 5;

/**
 * Takes run.lock in `runDir` (which must exist) for this process. A lock held by a running process,
 * by another machine (whose processes cannot be checked from here) or not written by pix2pix is a
 * one-line UserError naming the holder; one left by a dead process of this machine, or one that
 * `takeOver` says has stopped (on any machine), is taken over, with one log line saying so. The lock
 * is also removed when the process exits without release() (a second Ctrl-C calls process.exit);
 * only a SIGKILL or a crash of the machine leaves it behind.
 */
export async function lockRun(
  runDir: string,
  log: Logger,
  takeOver?: (holder: LockHolder) => boolean,
): Promise<RunLock> {
  const path = join(runDir, RUN_LOCK);
  const holder: LockHolder = {
    pid: process.pid,
    host: hostname(),
    since: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
  };
  const mine = lockTarget(holder);
  let replaced: LockHolder | undefined;
  for (let attempt = 0; attempt < TAKEOVER_TRIES; attempt++) {
    try {
      await symlink(mine, path);
      if (replaced) {
        log.info(
          `${runDir}: taking over the lock of pid ${replaced.pid}${replaced.host === holder.host ? '' : ` on ${replaced.host}`} (since ${replaced.since}), which is no longer running`,
        );
      }
      return held(path, holder, mine, replaced);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const target = await readlink(path).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return undefined; // released meanwhile: try again
      throw new UserError(
        `${path} is not a lock pix2pix wrote (${e.code}): remove it if no pix2pix train runs on ${runDir}`,
      );
    });
    if (target === undefined) continue;
    const other = parseLockTarget(target);
    if (!other) {
      throw new UserError(
        `${path} is not a lock pix2pix wrote (it names '${target}'): remove it if no pix2pix train runs on ${runDir}`,
      );
    }
    if (takeOver?.(other)) {
      // The caller knows this holder has stopped (a queue handed its job on when it stopped renewing it).
      if (await removeStale(runDir, target)) replaced = other;
      continue;
    }
    if (other.host !== holder.host) {
      throw new RunLockedError(
        `${runDir} is being trained by pid ${other.pid} on host ${other.host} since ${other.since}: wait for it, or stop it there; if it is no longer running, remove ${path}`,
      );
    }
    if (isRunning(other.pid)) {
      throw new RunLockedError(
        `${runDir} is being trained by pid ${other.pid} on host ${other.host} since ${other.since}: wait for it, or stop it`,
      );
    }
    if (await removeStale(runDir, target)) replaced = other;
  }
  throw new UserError(`${path}: other processes keep taking the lock over; try again`);
}

/**
 * Removes the run's lock if it still names `stale`. Another process may be taking it over at
 * the same time: renaming is atomic, so only one of them moves this very link aside, and one that
 * moved a newer lock instead puts it back. Returns whether the stale lock was removed here.
 */
async function removeStale(runDir: string, stale: string): Promise<boolean> {
  const path = join(runDir, RUN_LOCK);
  // Hidden: serve lists no dot-file, for the moment it exists.
  const aside = join(runDir, `.${RUN_LOCK}.${process.pid}.${randomBytes(4).toString('hex')}.stale`);
  try {
    await rename(path, aside);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
  const moved = await readlink(aside);
  await rm(aside, { force: true });
  if (moved === stale) return true;
  await symlink(moved, path).catch(() => {});
  return false;
}

function held(path: string, holder: LockHolder, mine: string, replaced?: LockHolder): RunLock {
  const stillMine = (target: string | undefined) => target === mine;
  // process.exit skips finally blocks: the lock goes with the process all the same.
  const onExit = () => {
    try {
      if (stillMine(readlinkSync(path))) unlinkSync(path);
    } catch {
      // already gone
    }
  };
  process.once('exit', onExit);
  let released = false;
  return {
    path,
    holder,
    ...(replaced && { replaced }),
    async release() {
      if (released) return;
      released = true;
      process.off('exit', onExit);
      if (stillMine(await readlink(path).catch(() => undefined))) await rm(path, { force: true });
    },
  };
}
