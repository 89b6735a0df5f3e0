import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, homedir } from 'node:os';
import { join } from 'node:path';
import type { NativeAddon } from './native-addon.js';

/**
 * oneDNN layout choices kept between processes. On a shape's first call the addon times each pass's
 * candidate layouts (three rounds of three or four kernels: the 5-54 s first step of a run); which one
 * wins depends on the shape, the CPU, the thread count and oneDNN's version, so the file is named by
 * those and every process starts from what earlier ones chose. A missing, unreadable or foreign file
 * is ignored and rewritten: it is a cache, never an error. Bump FORMAT when the candidates change.
 */
const FORMAT = 1;

type Choice = [key: string, mode: number];

interface CacheFile {
  format: number;
  machine: Machine;
  choices: Choice[];
}

interface Machine {
  onednn: string;
  threads: number;
  cpu: string;
}

/** The cache folder: P2P_LAYOUT_CACHE (`off` disables it), else $XDG_CACHE_HOME or ~/.cache, /pix2pix-ts. */
function layoutCacheDir(): string | null {
  const env = process.env['P2P_LAYOUT_CACHE'];
  if (env === 'off') return null;
  if (env) return env;
  return join(process.env['XDG_CACHE_HOME'] || join(homedir(), '.cache'), 'pix2pix-ts');
}

/** The machine's cache file in `dir`, named by what the choices depend on. */
function cacheFileIn(dir: string, machine: Machine): string {
  const id = createHash('sha256')
    .update(JSON.stringify({ format: FORMAT, ...machine }))
    .digest('hex')
    .slice(0, 16);
  return join(dir, `conv-layouts-${id}.json`);
}

/**
 * The file's choices when it was written for this machine, else none. Entries are passed on as they
 * are: the addon's setConvChoices skips whatever is not a valid [key, mode] pair.
 */
function readChoices(file: string, machine: Machine): unknown[] {
  try {
    const c = JSON.parse(readFileSync(file, 'utf8')) as Partial<CacheFile>;
    const same =
      c.format === FORMAT &&
      c.machine?.onednn === machine.onednn &&
      c.machine.threads === machine.threads &&
      c.machine.cpu === machine.cpu;
    return same && Array.isArray(c.choices) ? c.choices : [];
  } catch {
    return [];
  }
}

/**
 * Gives the addon the choices earlier processes made here, and saves those it took and this
 * process's own when it exits (synchronously, through a temporary file and a rename, so a reader
 * never sees half a file). `info` is the addon's own (oneDNN version, OpenMP threads). Returns how
 * many were loaded.
 */
export function useLayoutCache(
  addon: NativeAddon,
  { onednn, threads }: { onednn: string; threads: number },
): number {
  const dir = layoutCacheDir();
  if (dir == null) return 0;
  const machine: Machine = { onednn, threads, cpu: cpus()[0]?.model ?? 'unknown' };
  const file = cacheFileIn(dir, machine);
  const loaded = addon.setConvChoices(readChoices(file, machine));
  const tuningsAtLoad = addon.convTunings();
  process.on('exit', () => {
    if (addon.convTunings() === tuningsAtLoad) return;
    saveLayoutChoices(addon, file, machine);
  });
  return loaded;
}

function saveLayoutChoices(addon: NativeAddon, file: string, machine: Machine): void {
  // What the addon holds: the valid choices it loaded from the file, and its own. (A choice another
  // process saved meanwhile is lost, and timed again by the next process: a cache can afford that.)
  const body: CacheFile = { format: FORMAT, machine, choices: addon.convChoices() };
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    mkdirSync(join(file, '..'), { recursive: true });
    writeFileSync(tmp, JSON.stringify(body));
    renameSync(tmp, file);
  } catch {
    // A read-only or full disk costs the next process its tuning time, nothing else.
    rmSync(tmp, { force: true });
  }
}
