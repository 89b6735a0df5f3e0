const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/**
 * IEEE 754 binary16 bits of `v`, rounded to nearest (ties to even) as a hardware conversion does:
 * subnormals kept, overflow to infinity, NaN stays NaN. tfjs-core's `decodeWeights` reads these
 * back (its float16 lookup-table decoder) for a weight whose manifest entry has
 * `quantization: { dtype: 'float16' }`.
 */
export function float16Bits(v: number): number {
  f32[0] = v;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 112; // rebias 127 -> 15
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half: m * 2^-24 with m = mant24 * 2^(exp - 126).
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const rem = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    let m = mant >>> shift;
    if (rem > halfway || (rem === halfway && m & 1)) m++; // a carry into 0x400 is the smallest normal
    return sign | m;
  }
  let bits = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && bits & 1)) bits++; // a carry rounds up the exponent (to inf at the top)
  return sign | bits;
}

/** float32 values -> binary16 bits, little-endian as tfjs weight files are. */
export function toFloat16(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = float16Bits(values[i]!);
  return out;
}
