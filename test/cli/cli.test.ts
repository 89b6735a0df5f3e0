import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { assertOneLineError, pix2pix as cli, tempDir } from '../helpers.js';

// Every test only waits on CLI processes (~1.5 s of CPU each to start): two at a time.
describe('pix2pix CLI', { concurrency: 2 }, () => {
  let root: string;
  /** A folder the refused commands are pointed at: none of them may make it. */
  let never: string;
  before(async () => {
    root = await tempDir('p2p-cli-');
    never = join(root, 'never');
  });

  it('info --json reports the reference parameter counts at 256', async () => {
    const r = await cli(['info', '--size', '256', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    assert.equal(out.generator.params, 54_404_099);
    assert.equal(out.discriminator.params, 1_557_313);
    assert.ok(out.generator.layers.some((l: { type: string }) => l.type === 'InstanceNorm'));
  });

  it('info shows the denoise generator (--residual --residual-blur 3); --residual-blur without --residual is one error line', async () => {
    const r = await cli([
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
    ]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    assert.equal(out.residual, true);
    assert.equal(out.residualBlur, 3);
    assert.ok(out.generator.layers.some((l: { type: string }) => l.type === 'ResidualOutput'));
    assertOneLineError(
      await cli(['info', '--size', '128', '--residual-blur', '3']),
      /--residual-blur 3 needs --residual/,
    );
  });

  it('rejects a missing data directory in one line, writing nothing', async () => {
    assertOneLineError(
      await cli(['train', '--data', '/no/such/dataset', '--out', never, '--backend', 'cpu']),
      /does not exist/,
    );
    assert.ok(!existsSync(never));
  });

  it('rejects an image size the unet cannot take in one line, writing nothing', async () => {
    assertOneLineError(await cli(['train', '--data', '.', '--out', never, '--size', '100']), /power of two/);
    assertOneLineError(await cli(['info', '--size', '16']), /power of two/);
    assert.ok(!existsSync(never));
  });

  it('rejects an unknown backend in one line naming the choices, writing nothing', async () => {
    assertOneLineError(
      await cli(['train', '--data', '.', '--out', never, '--backend', 'cuda']),
      /backend.*cuda.*auto, native, webgpu, wasm, cpu/,
    );
    assert.ok(!existsSync(never));
  });

  it('rejects a non-numeric batch size in one line, writing nothing', async () => {
    assertOneLineError(
      await cli(['train', '--data', '.', '--out', never, '--batch-size', 'four']),
      /not an integer/,
    );
    assert.ok(!existsSync(never));
  });

  it('eval: a run folder that does not exist, or is not a run, is one clear line', async () => {
    assertOneLineError(
      await cli(['eval', '--run', '/no/such/run']),
      /run folder \/no\/such\/run does not exist/,
    );
    assertOneLineError(await cli(['eval', '--run', 'test']), /test is not a training run \(no config.json\)/);
    assertOneLineError(
      await cli(['eval', '--run', 'test', '--epochs', '1,two']),
      /--epochs must be 'all' or epoch numbers/,
    );
  });

  it('compare: an unknown or malformed --vary is one clear line, and no run folder is made', async () => {
    const out = join(root, 'cmp');
    const base = ['compare', '--data', '/no/such/data', '--out', out];
    assertOneLineError(
      await cli([...base, '--vary', 'batchsize=32,64']),
      /unknown training option 'batchsize'/,
    );
    assertOneLineError(await cli([...base, '--vary', 'batch-size=32,big']), /'big' is not a valid value/);
    assertOneLineError(await cli(base), /at least one --vary/);
    assertOneLineError(await cli([...base, '--vary', 'batch-size=2,4']), /does not exist/);
    assert.ok(!existsSync(out));
  });

  it('demo keeps what it shows: the samples of every epoch and its last checkpoint only (--keep 1, ngf 32)', async () => {
    const out = join(root, 'demo-run');
    const small = ['--pairs', '10', '--size', '32', '--epochs', '3', '--max-steps', '1', '--backend', 'wasm'];
    const r = await cli(['demo', '--out', out, ...small]);
    assert.equal(r.code, 0, r.stderr);
    const run = join(out, 'run');
    assert.deepEqual((await readdir(join(run, 'checkpoints'))).sort(), ['epoch-0003', 'latest']);
    assert.deepEqual((await readdir(join(run, 'samples'))).sort(), [
      'epoch-0001.png',
      'epoch-0002.png',
      'epoch-0003.png',
    ]);
    const { config } = JSON.parse(await readFile(join(run, 'config.json'), 'utf8'));
    assert.equal(config.keep, 1);
    assert.equal(config.ngf, 32);
  });

  it('demo never deletes a folder it did not make', async () => {
    const out = join(root, 'demo');
    await mkdir(join(out, 'run', 'checkpoints'), { recursive: true });
    await writeFile(join(out, 'run', 'config.json'), '{"config":{}}');
    await writeFile(join(out, 'notes.txt'), 'mine');
    assertOneLineError(await cli(['demo', '--out', out]), /is not empty and was not made by pix2pix demo/);
    assert.ok(existsSync(join(out, 'run', 'config.json')) && existsSync(join(out, 'notes.txt')));
  });
});
