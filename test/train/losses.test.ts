import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { ganLoss, l1Loss } from '../../src/train/losses.js';
import { useWasm } from '../helpers.js';

before(useWasm);

describe('losses', () => {
  const xs = [-30, -2, -0.5, 0, 0.7, 3, 40];
  const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

  it('vanilla GAN loss is BCE(sigmoid(x), label), finite even for confident logits', () => {
    const logits = tf.tensor1d(xs);
    const bce = (label: number) =>
      xs.reduce((s, x) => {
        // log(sigmoid(x)) = -log1p(e^-x), computed stably for the large |x| cases.
        const logP = x > 0 ? -Math.log1p(Math.exp(-x)) : x - Math.log1p(Math.exp(x));
        const log1mP = x > 0 ? -x - Math.log1p(Math.exp(-x)) : -Math.log1p(Math.exp(x));
        return s - (label * logP + (1 - label) * log1mP);
      }, 0) / xs.length;
    assert.ok(Math.abs(ganLoss(logits, true, 'vanilla').dataSync()[0] - bce(1)) < 1e-5);
    assert.ok(Math.abs(ganLoss(logits, false, 'vanilla').dataSync()[0] - bce(0)) < 1e-5);
    assert.ok(Math.abs(sigmoid(0.7) - 0.668) < 1e-3);
  });

  it('lsgan is the mean squared distance to the label', () => {
    const logits = tf.tensor1d([0, 1, 2]);
    assert.ok(Math.abs(ganLoss(logits, true, 'lsgan').dataSync()[0] - (1 + 0 + 1) / 3) < 1e-6);
    assert.ok(Math.abs(ganLoss(logits, false, 'lsgan').dataSync()[0] - (0 + 1 + 4) / 3) < 1e-6);
  });

  it('L1 is the mean absolute difference', () => {
    assert.equal(l1Loss(tf.tensor1d([1, -1, 3]), tf.tensor1d([0, 1, 3])).dataSync()[0], 1);
  });
});
