// The train/test split by source, with no Node import: `pix2pix prepare` and the browser's in-memory
// datasets (in-memory.ts) split the same names the same way.
import { Rng } from './rng.js';
import type { Split } from './types.js';

/** A source to split and the number of pairs it gave. */
export interface SourcePairs {
  name: string;
  pairs: number;
}

/** Above this many item x sum steps the exact search gives way to a greedy one (large inputs only). */
const EXACT_BUDGET = 1e8;

/**
 * Assigns whole sources to train or test, so tiles of one photo never land on both sides, such that the
 * *pairs* come as close to `ratio` (the train fraction) as the sources' pair counts allow: the test side
 * gets a set of sources whose pair count is nearest to `total - round(total * ratio)` (an exact
 * subset-sum; ties go to the smaller test side). Plain names count one pair each, which splits by number
 * of sources. The order is a seeded shuffle of the sorted names, and among equally close sets the one
 * taking the sources at the end of that order for test is chosen, so the result depends only on the
 * sources and the seed, and with equal counts it is the same as a split by number of sources. With two or
 * more sources and 0 < ratio < 1, each side gets at least one.
 */
export function splitSources(
  sources: readonly string[] | readonly SourcePairs[],
  ratio: number,
  seed: number,
): Map<string, Split> {
  const items: SourcePairs[] = sources.map((s) => (typeof s === 'string' ? { name: s, pairs: 1 } : s));
  const count = new Map(items.map((s) => [s.name, s.pairs]));
  for (const [name, n] of count) {
    if (!Number.isInteger(n) || n < 0)
      throw new Error(`source ${name}: pairs must be an integer >= 0, got ${n}`);
  }
  const order = Rng.derive(seed, 'split').shuffle([...count.keys()].sort());
  const bySourceCount = (): Map<string, Split> => {
    let nTrain = Math.round(order.length * ratio);
    if (order.length >= 2 && ratio > 0 && ratio < 1) nTrain = Math.min(order.length - 1, Math.max(1, nTrain));
    return new Map(order.map((n, i) => [n, i < nTrain ? 'train' : 'test']));
  };
  if (order.length < 2 || !(ratio > 0 && ratio < 1)) return bySourceCount();
  // Candidates for test, most preferred first: the end of the shuffled order.
  const pref = [...order].reverse();
  const c = pref.map((n) => count.get(n)!);
  const total = c.reduce((a, b) => a + b, 0);
  if (c.filter((n) => n > 0).length < 2) return bySourceCount(); // pair counts cannot tell the sides apart
  const target = total - Math.round(total * ratio);
  const test = exactTestSet(c, total, target) ?? greedyTestSet(c, total, target);
  return new Map(pref.map((n, i) => [n, test.has(i) ? 'test' : 'train']));
}

/**
 * Indices (into `c`) of a set with 0 < sum < total nearest to `target`, lowest sum on ties; among sets of
 * that sum, the one whose highest index is lowest (recursively), i.e. the earliest items. Undefined when
 * the search would be too large.
 */
function exactTestSet(c: number[], total: number, target: number): Set<number> | undefined {
  // Some valid sum lies within max(c) of any target in [0, total] (prefix sums step by at most max(c)).
  const cap = Math.min(total - 1, target + c.reduce((a, b) => Math.max(a, b), 0));
  if (c.length * (cap + 1) > EXACT_BUDGET) return undefined;
  // by[s]: the first item with which sum s became reachable (-1: unreachable); s - c[by[s]] was
  // reachable with earlier items only, so walking back uses strictly decreasing indices.
  const by = new Int32Array(cap + 1).fill(-1);
  by[0] = c.length;
  for (let i = 0; i < c.length; i++) {
    const w = c[i]!;
    if (w === 0) continue;
    for (let s = cap; s >= w; s--) if (by[s] === -1 && by[s - w] !== -1) by[s] = i;
  }
  let best = -1;
  for (let d = 0; best < 0 && d <= Math.max(target, cap - target); d++) {
    for (const s of [target - d, target + d]) {
      if (s > 0 && s <= cap && by[s] !== -1) {
        best = s;
        break;
      }
    }
  }
  if (best < 0) return undefined;
  const set = new Set<number>();
  for (let s = best; s > 0; s -= c[by[s]!]!) set.add(by[s]!);
  return set;
}

/** First fit in preference order, then each side made non-empty: for inputs too large to search exactly. */
function greedyTestSet(c: number[], total: number, target: number): Set<number> {
  const set = new Set<number>();
  let sum = 0;
  for (const [i, w] of c.entries()) {
    if (w > 0 && Math.abs(sum + w - target) < Math.abs(sum - target)) {
      set.add(i);
      sum += w;
    }
  }
  if (sum === 0) set.add(c.findIndex((w) => w > 0));
  if (sum === total) {
    let last = c.length - 1;
    while (c[last] === 0) last--;
    set.delete(last);
  }
  return set;
}
