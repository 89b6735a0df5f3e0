import { type BackendChoice, setupBackend } from '../backend/index.js';
import { consoleLogger } from '../util/log.js';

/** Chooses the backend once and says which, and why when `auto` had to fall back. */
export async function startBackend(choice: BackendChoice): Promise<string> {
  const { name, fallbackReason } = await setupBackend(choice);
  if (fallbackReason) consoleLogger.warn(fallbackReason);
  consoleLogger.info(`backend: ${name}`);
  return name;
}
