import { createHash } from 'node:crypto';
import { SeededRandom } from './seeded.js';

/**
 * Seeded randomness for everything in the data pipeline. Streams are derived from a string key so that a
 * tile's noise or an epoch's order depends only on (seed, what it is for), never on processing order.
 */
export class Rng extends SeededRandom {
  /** A stream keyed by any parts; the same parts always give the same stream. */
  static derive(...parts: (string | number)[]): Rng {
    const h = createHash('sha256').update(parts.join('\u0000')).digest();
    return new Rng(h.readUInt32LE(0));
  }
}
