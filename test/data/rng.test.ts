import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { Rng } from '../../src/data/rng.js';

function moments(xs: number[]): { mean: number; variance: number } {
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  return { mean, variance: xs.reduce((s, x) => s + (x - mean) ** 2, 0) / xs.length };
}

test('derived streams are reproducible and depend on every part of the key', () => {
  const draw = (r: Rng): number[] => Array.from({ length: 5 }, () => r.next());
  assert.deepEqual(draw(Rng.derive(1, 'a', 2)), draw(Rng.derive(1, 'a', 2)));
  assert.notDeepEqual(draw(Rng.derive(1, 'a', 2)), draw(Rng.derive(1, 'a', 3)));
  assert.notDeepEqual(draw(Rng.derive(1, 'a', 2)), draw(Rng.derive(2, 'a', 2)));
  for (const v of draw(new Rng(9))) assert.ok(v >= 0 && v < 1);
});

test('derive seeds a stream as it did on node:crypto (the first four digest bytes, little-endian)', () => {
  const keys: (string | number)[][] = [[1, 'split'], [7, 'degrade', 'photo_01', 3], [0, 'é∂ 🙂', -2.5], []];
  for (const parts of keys) {
    const seed = createHash('sha256').update(parts.join('\u0000')).digest().readUInt32LE(0);
    const draw = (r: Rng): number[] => Array.from({ length: 4 }, () => r.next());
    assert.deepEqual(draw(Rng.derive(...parts)), draw(new Rng(seed)), parts.join(','));
  }
});

test('normal() has mean 0 and variance 1', () => {
  const r = new Rng(4);
  const { mean, variance } = moments(Array.from({ length: 40000 }, () => r.normal()));
  assert.ok(Math.abs(mean) < 0.02, `mean ${mean}`);
  assert.ok(Math.abs(variance - 1) < 0.03, `variance ${variance}`);
});

test('poisson() has mean and variance lambda, on both the small and the large-lambda algorithm', () => {
  for (const lambda of [0.5, 7, 29.9, 30, 150, 1000]) {
    const r = Rng.derive(3, lambda);
    const xs = Array.from({ length: 20000 }, () => r.poisson(lambda));
    assert.ok(xs.every((x) => Number.isInteger(x) && x >= 0));
    const { mean, variance } = moments(xs);
    const se = Math.sqrt(lambda / xs.length);
    assert.ok(Math.abs(mean - lambda) < 5 * se, `lambda ${lambda}: mean ${mean}`);
    assert.ok(Math.abs(variance / lambda - 1) < 0.06, `lambda ${lambda}: variance ${variance}`);
  }
  assert.equal(new Rng(1).poisson(0), 0);
});

test('shuffle() is a seeded permutation', () => {
  const xs = Array.from({ length: 50 }, (_, i) => i);
  const a = new Rng(5).shuffle([...xs]);
  assert.deepEqual(
    [...a].sort((p, q) => p - q),
    xs,
  );
  assert.deepEqual(new Rng(5).shuffle([...xs]), a);
  assert.notDeepEqual(a, xs);
});
