import assert from 'node:assert/strict';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { prepareCommand } from '../../src/cli/commands/prepare.js';
import { UserError } from '../../src/util/log.js';
import { writeImage } from '../data/helpers.js';
import { tempDir } from '../helpers.js';

const root = await tempDir('p2p-cli-prepare-');

/** Runs the command in-process and returns what it printed, result lines and log lines apart. */
async function run(args: string[]): Promise<{ stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const io = {
    out: (l: string) => out.push(`${l}\n`),
    log: { info: (m: string) => err.push(`${m}\n`), warn: (m: string) => err.push(`warning: ${m}\n`) },
  };
  await prepareCommand(io)
    .exitOverride()
    .configureOutput({ writeErr: (s) => err.push(s), writeOut: (s) => out.push(s) })
    .parseAsync(args, { from: 'user' });
  return { stdout: out.join(''), stderr: err.join('') };
}

test('prepare --json prints one JSON result line last, with the counts', async () => {
  const from = join(root, 'photos');
  await mkdir(from, { recursive: true });
  for (const i of [1, 2, 3]) await writeImage(join(from, `p${i}.png`), 64, 32, i);
  const out = join(root, 'ds');
  const { stdout, stderr } = await run([
    '--from',
    from,
    '--task',
    'denoise',
    '--size',
    '32',
    '--seed',
    '3',
    '--out',
    out,
    '--json',
  ]);
  const lines = stdout.trim().split('\n');
  const result = JSON.parse(lines[lines.length - 1]!);
  assert.equal(result.ok, true);
  assert.equal(result.size, 32);
  assert.equal(result.seed, 3);
  assert.equal(result.counts.train + result.counts.test, 6);
  assert.equal(result.counts.sources, 3);
  assert.match(stderr, /wrote .*ds: \d+ train \+ \d+ test pairs of 32x32 from 3 sources/);
  // Three photos of two pairs each cannot split 8:2; the closest is 4 + 2, and prepare says so.
  assert.deepEqual([result.counts.train, result.counts.test], [4, 2]);
  assert.match(
    stderr,
    /warning: --split 0\.8 asked, but whole sources give 4 train \+ 2 test pairs \(0\.667\)/,
  );
  const info = JSON.parse(await readFile(join(out, 'dataset.json'), 'utf8'));
  assert.deepEqual([info.split, info.achievedSplit], [0.8, 0.6667]);
});

test('prepare rejects bad numbers and choices, and passes UserErrors through', async () => {
  await assert.rejects(run(['--from', root, '--out', join(root, 'x'), '--size', 'big']), /not an integer/);
  await assert.rejects(
    run(['--from', root, '--out', join(root, 'x'), '--pairs', 'zip']),
    /Allowed choices are aligned, folders/,
  );
  await assert.rejects(run(['--out', join(root, 'x')]), /required option '--from <dir>'/);
  await assert.rejects(
    run(['--from', join(root, 'none'), '--task', 'denoise', '--out', join(root, 'x')]),
    (e: Error) => e instanceof UserError && /does not exist/.test(e.message),
  );
});
