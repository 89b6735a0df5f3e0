import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Command } from 'commander';
import { addTrainOptions, configFromFlags } from '../../src/cli/commands/train.js';
import { DEFAULT_CONFIG, PRESETS } from '../../src/train/config.js';

function parse(args: string[]) {
  const cmd = addTrainOptions(new Command('train')).exitOverride();
  cmd.parse(args, { from: 'user' });
  return configFromFlags(cmd.opts(), 'data', 'out', cmd);
}

describe('--preset', () => {
  it('without it every option is the reference default', () => {
    assert.deepEqual(parse([]), { ...DEFAULT_CONFIG, data: 'data', out: 'out' });
  });

  it('--preset denoise sets its values, and options typed on the command line win', () => {
    const c = parse(['--preset', 'denoise', '--lr', '5e-4', '--size', '128']);
    for (const [k, v] of Object.entries(PRESETS.denoise)) {
      if (k !== 'lr') assert.equal(c[k as keyof typeof c], v, k);
    }
    assert.equal(c.lr, 5e-4);
    assert.equal(c.size, 128);
    assert.equal(c.residual, true);
    assert.equal(c.dropout, false);
    // Untouched by the preset: the reference's.
    assert.equal(c.netD, DEFAULT_CONFIG.netD);
    assert.equal(c.ganMode, DEFAULT_CONFIG.ganMode);
  });

  it('a flag the preset turns on is switched off by --no-<flag>, and --no-<flag> alone is the default', () => {
    assert.equal(parse(['--preset', 'denoise']).degradeOnTheFly, true);
    const off = parse(['--preset', 'denoise', '--no-degrade-on-the-fly']);
    assert.equal(off.degradeOnTheFly, false);
    // The preset's --scale-jitter goes with it (the shrink needs the noise drawn after it); typed, it stays and is refused.
    assert.equal(off.scaleJitter, 1);
    assert.throws(
      () => parse(['--preset', 'denoise', '--no-degrade-on-the-fly', '--scale-jitter', '0.7']),
      /--scale-jitter 0.7 needs --degrade-on-the-fly/,
    );
    assert.equal(parse(['--no-degrade-on-the-fly']).degradeOnTheFly, false);
    assert.equal(parse(['--degrade-on-the-fly']).degradeOnTheFly, true);
    assert.deepEqual(parse(['--no-degrade-on-the-fly']), { ...DEFAULT_CONFIG, data: 'data', out: 'out' });
  });

  it('an unknown preset is refused by the parser', () => {
    assert.throws(() => parse(['--preset', 'sharpen']), /Allowed choices are denoise/);
  });
});
