import { type BackendChoice, setupBackend } from '../backend/index.js';
import { describeAdapter } from '../backend/webgpu.js';
import { consoleLogger } from '../util/log.js';

/** Chooses the backend once and says which (with the GPU adapter), and why when `auto` had to fall back. */
export async function startBackend(choice: BackendChoice): Promise<string> {
  const { name, fallbackReason, adapter } = await setupBackend(choice);
  if (fallbackReason) consoleLogger.warn(fallbackReason);
  consoleLogger.info(`backend: ${name}${adapter ? ` (adapter: ${describeAdapter(adapter)})` : ''}`);
  return name;
}
