import { sha256Bytes } from '../util/sha256.js';
import { SeededRandom } from './seeded.js';

/**
 * Seeded randomness for everything in the data pipeline. Streams are derived from a string key so that a
 * tile's noise or an epoch's order depends only on (seed, what it is for), never on processing order.
 * No Node import: the train page builds its pairs with the same streams as `pix2pix prepare`.
 */
export class Rng extends SeededRandom {
  /** A stream keyed by any parts; the same parts always give the same stream. */
  static derive(...parts: (string | number)[]): Rng {
    const h = sha256Bytes(parts.join('\u0000'));
    // The digest's first four bytes, little-endian: the seed node:crypto's readUInt32LE(0) gave.
    return new Rng((h[0]! | (h[1]! << 8) | (h[2]! << 16) | (h[3]! << 24)) >>> 0);
  }
}
