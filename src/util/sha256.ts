// SHA-256 (FIPS 180-4) in plain JavaScript, for code that also runs in a browser page or worker:
// node:crypto is not there, and WebCrypto's digest is async, which would make every derived random
// stream (data/rng.ts) async. Gives the same digests as node:crypto (test/util/sha256.test.ts).

const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
  0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
  0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
  0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
  0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
  0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
  0xc67178f2,
]);

const rotr = (x: number, n: number): number => (x >>> n) | (x << (32 - n));

/** Runs the compression function over the 64-byte blocks of `view` from `from` to `to`. */
function compress(h: Uint32Array, w: Uint32Array, view: DataView, from: number, to: number): void {
  for (let off = from; off < to; off += 64) {
    for (let i = 0; i < 16; i++) w[i] = view.getUint32(off + 4 * i);
    for (let i = 16; i < 64; i++) {
      const x = w[i - 15]!;
      const y = w[i - 2]!;
      w[i] =
        w[i - 16]! +
        (rotr(x, 7) ^ rotr(x, 18) ^ (x >>> 3)) +
        w[i - 7]! +
        (rotr(y, 17) ^ rotr(y, 19) ^ (y >>> 10));
    }
    let a = h[0]!;
    let b = h[1]!;
    let c = h[2]!;
    let d = h[3]!;
    let e = h[4]!;
    let f = h[5]!;
    let g = h[6]!;
    let k = h[7]!;
    for (let i = 0; i < 64; i++) {
      const t1 = (k + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i]! + w[i]!) | 0;
      const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
      k = g;
      g = f;
      f = e;
      e = (d + t1) | 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) | 0;
    }
    h[0]! += a;
    h[1]! += b;
    h[2]! += c;
    h[3]! += d;
    h[4]! += e;
    h[5]! += f;
    h[6]! += g;
    h[7]! += k;
  }
}

/** The 32-byte SHA-256 digest of `input`; a string is hashed as its UTF-8, as node:crypto's update(string). */
export function sha256Bytes(input: Uint8Array | string): Uint8Array {
  const bytes = typeof input === 'string' ? new TextEncoder().encode(input) : input;
  const h = new Uint32Array([
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
  ]);
  const w = new Uint32Array(64);
  // Whole blocks straight from the input (no copy of a large file), then the tail: the last bytes, a 1
  // bit, zeros and the bit length as 64-bit big-endian, in one or two blocks.
  const whole = bytes.length - (bytes.length % 64);
  compress(h, w, new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), 0, whole);
  const tail = new Uint8Array(bytes.length - whole + 9 > 64 ? 128 : 64);
  tail.set(bytes.subarray(whole));
  tail[bytes.length - whole] = 0x80;
  const tv = new DataView(tail.buffer);
  tv.setUint32(tail.length - 8, Math.floor(bytes.length / 2 ** 29));
  tv.setUint32(tail.length - 4, (bytes.length * 8) >>> 0);
  compress(h, w, tv, 0, tail.length);
  const out = new Uint8Array(32);
  const ov = new DataView(out.buffer);
  for (let i = 0; i < 8; i++) ov.setUint32(4 * i, h[i]!);
  return out;
}

/** The SHA-256 digest as 64 lowercase hex digits, as node:crypto's digest('hex'). */
export function sha256Hex(input: Uint8Array | string): string {
  let s = '';
  for (const b of sha256Bytes(input)) s += b.toString(16).padStart(2, '0');
  return s;
}

/**
 * sha256Hex through WebCrypto where the page has it (native code: for the hundreds of MB of a
 * checkpoint built in the browser), else sha256Hex: browsers withhold `crypto.subtle` from pages that
 * are not a secure context (e.g. `serve --host 0.0.0.0` opened over http by a LAN address). In Node,
 * node:crypto's createHash is several times faster than either.
 */
export async function sha256HexAsync(data: Uint8Array): Promise<string> {
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) return sha256Hex(data);
  let s = '';
  for (const b of new Uint8Array(await subtle.digest('SHA-256', data as Uint8Array<ArrayBuffer>))) {
    s += b.toString(16).padStart(2, '0');
  }
  return s;
}
