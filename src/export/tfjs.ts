import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type * as tfl from '@tensorflow/tfjs-layers';
import '../models/instance-norm.js';
import { layersModelFiles, SHARD_FILE, type TfjsExport, type TfjsExportOptions } from './layers-model.js';

export {
  DEFAULT_SHARD_BYTES,
  QUANTIZE_CHOICES,
  type Quantize,
  shardName,
  type TfjsExport,
  type TfjsExportOptions,
} from './layers-model.js';

/**
 * Writes `model` as a TensorFlow.js LayersModel (layersModelFiles: `model.json` + weight shards,
 * float16 with `quantize: 'float16'`) into `dir`. Files are renamed into place, and shards of an
 * earlier export into the same folder that this one does not use are removed.
 */
export async function writeLayersModel(
  model: tfl.LayersModel,
  dir: string,
  opts: TfjsExportOptions = {},
): Promise<TfjsExport> {
  const { entries, ...out } = await layersModelFiles(model, opts);
  await mkdir(dir, { recursive: true });
  const written: string[] = [];
  try {
    for (const f of entries) {
      const tmp = join(dir, `${f.path}.tmp`);
      await writeFile(tmp, f.data);
      written.push(tmp);
    }
    // model.json is last in entries: it is renamed into place once every shard it names is.
    for (const f of entries) await rename(join(dir, `${f.path}.tmp`), join(dir, f.path));
  } catch (e) {
    await Promise.all(written.map((p) => rm(p, { force: true })));
    throw e;
  }
  const stale = (await readdir(dir)).filter((f) => SHARD_FILE.test(f) && !out.shards.includes(f));
  await Promise.all(stale.map((f) => rm(join(dir, f), { force: true })));
  return out;
}
