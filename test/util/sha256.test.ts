import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { sha256Bytes, sha256Hex, sha256HexAsync } from '../../src/util/sha256.js';

const node = (x: Uint8Array | string): string => createHash('sha256').update(x).digest('hex');

test('sha256 equals node:crypto at every length around the block and padding boundaries', () => {
  const data = randomBytes(300);
  for (let n = 0; n <= 300; n++)
    assert.equal(sha256Hex(data.subarray(0, n)), node(data.subarray(0, n)), `${n}`);
  // A view into a larger buffer hashes its own bytes only.
  const view = data.subarray(5, 133);
  assert.equal(sha256Hex(view), node(view));
  assert.deepEqual(sha256Bytes(view), new Uint8Array(createHash('sha256').update(view).digest()));
});

test('sha256 of strings hashes their UTF-8, as node:crypto does; a known vector; a large input', () => {
  assert.equal(sha256Hex('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  for (const s of ['', '1\u00002\u0000split', 'é∂ photo 🙂', 'x'.repeat(1000)])
    assert.equal(sha256Hex(s), node(s));
  const big = randomBytes((1 << 20) + 3);
  assert.equal(sha256Hex(big), node(big));
});

test('sha256HexAsync (WebCrypto, else the plain-JS sha256Hex) equals node:crypto, with and without crypto.subtle', async () => {
  const data = randomBytes(70_001).subarray(3);
  assert.equal(await sha256HexAsync(data), node(data));
  // What a page outside a secure context has: crypto without subtle.
  const had = Object.getOwnPropertyDescriptor(globalThis, 'crypto')!;
  Object.defineProperty(globalThis, 'crypto', { value: {}, configurable: true });
  try {
    assert.equal(globalThis.crypto.subtle, undefined);
    assert.equal(await sha256HexAsync(data), node(data));
  } finally {
    Object.defineProperty(globalThis, 'crypto', had);
  }
  assert.ok(globalThis.crypto.subtle);
});
