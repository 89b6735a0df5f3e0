import { InvalidArgumentError } from 'commander';

/** Commander argument parsers that reject bad numbers with one clear line. */
export function intArg(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n)) throw new InvalidArgumentError('not an integer');
  return n;
}

export function floatArg(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError('not a number');
  return n;
}
