import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';

/** Runs the real CLI entry as a user would. */
function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ['bin/pix2pix.js', ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function assertOneLineError(r: ReturnType<typeof cli>, pattern: RegExp) {
  assert.notEqual(r.code, 0);
  const lines = r.stderr.trim().split('\n');
  const error = lines.filter((l) => l.startsWith('error'));
  assert.equal(error.length, 1, r.stderr);
  assert.match(error[0], pattern);
  assert.ok(!/^\s+at /m.test(r.stderr), `no stack trace: ${r.stderr}`);
}

describe('pix2pix CLI', () => {
  it('info --json reports the reference parameter counts at 256', () => {
    const r = cli('info', '--size', '256', '--json');
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    assert.equal(out.generator.params, 54_404_099);
    assert.equal(out.discriminator.params, 1_557_313);
    assert.ok(out.generator.layers.some((l: { type: string }) => l.type === 'InstanceNorm'));
  });

  it('info shows the denoise generator (--residual --residual-blur 3); --residual-blur without --residual is one error line', () => {
    const r = cli(
      'info',
      '--size',
      '128',
      '--ngf',
      '32',
      '--depth',
      '5',
      '--no-dropout',
      '--residual',
      '--residual-blur',
      '3',
      '--json',
    );
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    assert.equal(out.residual, true);
    assert.equal(out.residualBlur, 3);
    assert.ok(out.generator.layers.some((l: { type: string }) => l.type === 'ResidualOutput'));
    assertOneLineError(
      cli('info', '--size', '128', '--residual-blur', '3'),
      /--residual-blur 3 needs --residual/,
    );
  });

  it('rejects a missing data directory', () => {
    assertOneLineError(
      cli('train', '--data', '/no/such/dataset', '--out', '/tmp/p2p-x', '--backend', 'cpu'),
      /does not exist/,
    );
  });

  it('rejects an image size the unet cannot take', () => {
    assertOneLineError(cli('train', '--data', '.', '--out', '/tmp/p2p-x', '--size', '100'), /power of two/);
    assertOneLineError(cli('info', '--size', '16'), /power of two/);
  });

  it('rejects an unknown backend', () => {
    assertOneLineError(
      cli('train', '--data', '.', '--out', '/tmp/p2p-x', '--backend', 'cuda'),
      /backend.*cuda.*auto, native, webgpu, wasm, cpu/,
    );
  });

  it('rejects a non-numeric batch size', () => {
    assertOneLineError(
      cli('train', '--data', '.', '--out', '/tmp/p2p-x', '--batch-size', 'four'),
      /not an integer/,
    );
  });

  it('eval: a run folder that does not exist, or is not a run, is one clear line', () => {
    assertOneLineError(cli('eval', '--run', '/no/such/run'), /run folder \/no\/such\/run does not exist/);
    assertOneLineError(cli('eval', '--run', 'test'), /test is not a training run \(no config.json\)/);
    assertOneLineError(
      cli('eval', '--run', 'test', '--epochs', '1,two'),
      /--epochs must be 'all' or epoch numbers/,
    );
  });

  it('compare: an unknown or malformed --vary is one clear line, before anything is trained', () => {
    const base = ['compare', '--data', '/no/such/data', '--out', '/tmp/p2p-cmp-x'];
    assertOneLineError(cli(...base, '--vary', 'batchsize=32,64'), /unknown training option 'batchsize'/);
    assertOneLineError(cli(...base, '--vary', 'batch-size=32,big'), /'big' is not a valid value/);
    assertOneLineError(cli(...base), /at least one --vary/);
    assertOneLineError(cli(...base, '--vary', 'batch-size=2,4'), /does not exist/);
  });

  it('demo never deletes a folder it did not make', () => {
    const out = mkdtempSync(join(tmpdir(), 'p2p-demo-'));
    mkdirSync(join(out, 'run', 'checkpoints'), { recursive: true });
    writeFileSync(join(out, 'run', 'config.json'), '{"config":{}}');
    writeFileSync(join(out, 'notes.txt'), 'mine');
    assertOneLineError(cli('demo', '--out', out), /is not empty and was not made by pix2pix demo/);
    assert.ok(existsSync(join(out, 'run', 'config.json')) && existsSync(join(out, 'notes.txt')));
  });
});
