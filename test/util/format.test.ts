import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fmtDuration, fmtNum, fmtSig, TYPESET } from '../../src/util/format.js';

describe('util/format', () => {
  it('fmtNum: fixed decimals; inf, -inf and nan in files, ∞ and – on the pages', () => {
    assert.equal(fmtNum(23.456, 2), '23.46');
    assert.equal(fmtNum(Number.POSITIVE_INFINITY, 2), 'inf');
    assert.equal(fmtNum(Number.NEGATIVE_INFINITY, 2), '-inf');
    assert.equal(fmtNum(Number.NaN, 2), 'nan');
    assert.equal(fmtNum(Number.POSITIVE_INFINITY, 2, TYPESET), '∞');
    assert.equal(fmtNum(Number.NaN, 2, TYPESET), '–');
  });

  it('fmtSig: a decayed learning rate as 3.85e-5 and 2e-4 as typed, losses with 4 digits, large ones with one decimal', () => {
    assert.equal(fmtSig(0.000038461538461538436, 3), '3.85e-5');
    assert.equal(fmtSig(2e-4, 3), '2e-4');
    assert.equal(fmtSig(-3.8e-5, 3), '-3.8e-5');
    assert.equal(fmtSig(Math.LN2, 4), '0.6931');
    assert.equal(fmtSig(12.3456, 4), '12.35');
    assert.equal(fmtSig(12345.67, 4), '12345.7');
    assert.equal(fmtSig(0, 4), '0.000');
    assert.equal(fmtSig(Number.POSITIVE_INFINITY, 4, TYPESET), '∞');
  });

  it('fmtDuration: seconds with a decimal, then minutes and seconds, then hours and minutes', () => {
    assert.equal(fmtDuration(42.06), '42.1 s');
    assert.equal(fmtDuration(754.2), '12 min 34 s');
    assert.equal(fmtDuration(3725), '1 h 02 min');
    assert.equal(fmtDuration(Number.NaN), '–');
  });
});
