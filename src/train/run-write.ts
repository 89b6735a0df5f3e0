// The writes of a training run, guarded: a file-system failure (a full disk, a read-only or vanished
// folder) becomes one line naming the file and what a resume would continue from.
import { basename } from 'node:path';
import { latestCheckpoint } from '../run/checkpoints.js';
import { LATEST_PATH } from '../run/layout.js';
import { UserError } from '../util/log.js';

/**
 * A file of the run could not be written (disk full, read-only or vanished folder, I/O error). The
 * message says what survived: `latest` is never moved onto a partial checkpoint.
 */
export class RunWriteError extends UserError {
  override name = 'RunWriteError';
}

/**
 * Runs one write of the loop; a file-system failure becomes a RunWriteError naming the file, the
 * system's reason and the checkpoint a resume would continue from. Other errors pass unchanged.
 */
export async function guardWrite<T>(what: string, runDir: string, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (e instanceof UserError || typeof code !== 'string' || !/^E[A-Z]+$/.test(code)) throw e;
    const reason = code === 'ENOSPC' ? 'no space left on device' : (e as Error).message.split('\n')[0];
    const kept = await latestCheckpoint(runDir);
    throw new RunWriteError(
      `cannot write ${what} (${reason}): ${kept ? `${LATEST_PATH} still names ${basename(kept)}, which is whole; free space or fix the folder, then continue with --resume` : 'no checkpoint was written yet; free space or fix the folder and start again'}`,
    );
  }
}
