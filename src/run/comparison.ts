// A comparison's folder, as `compare --queue` leaves it before any cell has started:
//
//   compare.json     what was asked (the dataset, the base options, the --vary grid) and the cells, each
//                    with its folder and the id of its job in the queue (ComparisonFile)
//   <cell>/          one run folder a cell, made by whichever worker trains it
//   report.html/md   once written (compare --wait or --report)
//
// compare.json is written before any job is queued, so `--status`, `--report` and serve know the whole
// grid while no cell has a folder yet.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/fs.js';
import { UserError } from '../util/log.js';

export const COMPARISON_FILE = 'compare.json';
const FORMAT = 'pix2pix-ts-comparison';

/** One cell of the grid: a run of the base options with the varied ones set. */
export interface ComparisonCell {
  /** `batch-size=32, lr=0.001` */
  name: string;
  /** Its run folder, under the comparison's folder. */
  folder: string;
  values: Record<string, string | number | boolean>;
  /** Its job's id in the queue: derived from where it trains and its options. */
  jobId: string;
}

export interface ComparisonFile<C = Record<string, unknown>> {
  format: typeof FORMAT;
  version: 1;
  /** The queue's Redis URL, password left out. */
  queue: string;
  data: string;
  /** The `--vary` arguments as given. */
  vary: string[];
  gridEpochs: string;
  evalDropout: boolean;
  command: string;
  /** The options every cell shares (its `out` is the comparison's folder). */
  base: C;
  cells: ComparisonCell[];
  created: string;
}

export const comparisonPath = (dir: string) => join(dir, COMPARISON_FILE);

export function writeComparisonFile<C>(dir: string, file: ComparisonFile<C>): Promise<void> {
  return writeFileAtomic(comparisonPath(dir), `${JSON.stringify(file, null, 2)}\n`);
}

/** The folder's compare.json; undefined when it has none, a UserError when it is not one. */
export async function readComparisonFile<C>(dir: string): Promise<ComparisonFile<C> | undefined> {
  let text: string;
  try {
    text = await readFile(comparisonPath(dir), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  let file: ComparisonFile<C>;
  try {
    file = JSON.parse(text);
  } catch (e) {
    throw new UserError(`${comparisonPath(dir)} is not JSON: ${(e as Error).message}`);
  }
  if (file?.format !== FORMAT || file.version !== 1 || !Array.isArray(file.cells)) {
    throw new UserError(`${comparisonPath(dir)} is not a comparison pix2pix compare --queue wrote`);
  }
  return file;
}
