import { rename, rm, writeFile } from 'node:fs/promises';

/**
 * Writes `path` whole or not at all: into `path.tmp`, then renamed over it, so a crash or a full disk
 * never leaves a truncated file (a failed write removes its partial `.tmp`, freeing the space).
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  try {
    await writeFile(`${path}.tmp`, data);
  } catch (e) {
    await rm(`${path}.tmp`, { force: true }).catch(() => {});
    throw e;
  }
  await rename(`${path}.tmp`, path);
}
