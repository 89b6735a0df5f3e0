import assert from 'node:assert/strict';
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import { checkDataset, listPairs } from '../../src/data/check.js';
import { writeSyntheticDataset } from '../../src/data/synthetic.js';
import type { Logger } from '../../src/util/log.js';
import { UserError } from '../../src/util/log.js';
import { tempDir, writeImage } from './helpers.js';

function recorder(): Logger & { warnings: string[]; infos: string[] } {
  const warnings: string[] = [];
  const infos: string[] = [];
  return { warnings, infos, warn: (m) => warnings.push(m), info: (m) => infos.push(m) };
}

const isUserError = (re: RegExp) => (e: Error) => {
  assert.ok(e instanceof UserError, `expected a UserError, got ${e}`);
  assert.match(e.message, re);
  return true;
};

let template: string | undefined;
/** A fresh copy of one small synthetic dataset (made once per file). */
async function dataset(): Promise<string> {
  if (!template) {
    template = join(await tempDir(), 'template');
    await writeSyntheticDataset(template, { count: 6, size: 32, seed: 2, split: 0.5 });
  }
  const dir = join(await tempDir(), 'ds');
  await cp(template, dir, { recursive: true });
  return dir;
}

test('a good dataset passes, hashed, with its counts and size', async () => {
  const dir = await dataset();
  const log = recorder();
  const r = await checkDataset(dir, { log });
  assert.deepEqual(r.counts, { train: 3, test: 3 });
  assert.equal(r.size, 32);
  assert.equal(r.hashed, true);
  assert.deepEqual(log.warnings, []);
});

test('a missing folder is a UserError', async () => {
  await assert.rejects(
    checkDataset(join(await tempDir(), 'nope')),
    isUserError(/dataset folder .*nope does not exist/),
  );
});

test('a changed file fails the hash check; the fast check catches a changed length only', async () => {
  const dir = await dataset();
  const info = JSON.parse(await readFile(join(dir, 'dataset.json'), 'utf8'));
  const name = info.files.train[0].name;
  const path = join(dir, 'train', 'B', name);
  const bytes = await readFile(path);
  bytes[bytes.length - 20]! ^= 0xff;
  await writeFile(path, bytes);
  await assert.rejects(
    checkDataset(dir),
    isUserError(new RegExp(`train/B/${name} does not match its SHA-256`)),
  );
  const log = recorder();
  const fast = await checkDataset(dir, { hash: 'fast', log });
  assert.equal(fast.hashed, false);
  assert.match(log.infos.join('\n'), /checking byte lengths only/);
  // auto switches to the fast path above its limit
  assert.equal((await checkDataset(dir, { autoHashLimit: 10 })).hashed, false);
  await writeFile(path, Buffer.concat([bytes, Buffer.from([0])]));
  await assert.rejects(
    checkDataset(dir, { hash: 'fast' }),
    isUserError(/has \d+ bytes, dataset\.json says \d+/),
  );
});

test('a deleted partner is reported with its path', async () => {
  const dir = await dataset();
  const info = JSON.parse(await readFile(join(dir, 'dataset.json'), 'utf8'));
  const name = info.files.test[1].name;
  await rm(join(dir, 'test', 'A', name));
  await assert.rejects(
    checkDataset(dir),
    isUserError(new RegExp(`test/A/${name} is missing.*re-run pix2pix prepare`)),
  );
});

test('without dataset.json the bare layout is accepted with a warning', async () => {
  const dir = await dataset();
  await rm(join(dir, 'dataset.json'));
  await writeFile(join(dir, 'train', 'A', 'notes.txt'), 'x');
  await writeFile(join(dir, 'train', 'B', 'notes.txt'), 'x');
  const log = recorder();
  await assert.rejects(
    checkDataset(dir, { log }),
    isUserError(/train\/A\/notes\.txt is not a readable image/),
  );
  assert.match(log.warnings[0]!, /no dataset\.json.*as they are/);
  await rm(join(dir, 'train', 'A', 'notes.txt'));
  await rm(join(dir, 'train', 'B', 'notes.txt'));
  const r = await checkDataset(dir, { log });
  assert.deepEqual(r.counts, { train: 3, test: 3 });
  assert.equal(r.size, 32);
  assert.equal(r.hashed, false);
});

test('bare layout: missing partner and A/B size mismatch', async () => {
  const dir = join(await tempDir(), 'bare');
  for (const s of ['train/A', 'train/B', 'test/A', 'test/B']) await mkdir(join(dir, s), { recursive: true });
  await writeImage(join(dir, 'train/A/p.png'), 32, 32);
  await writeImage(join(dir, 'train/B/p.png'), 32, 32);
  await writeImage(join(dir, 'train/A/q.png'), 32, 32);
  await assert.rejects(checkDataset(dir), isUserError(/train: q\.png in A\/ has no partner in B\//));
  await assert.rejects(listPairs(dir, 'train'), isUserError(/q\.png in A\/ has no partner/));
  await writeImage(join(dir, 'train/B/q.png'), 40, 32);
  await assert.rejects(checkDataset(dir), isUserError(/train\/q\.png: A is 32x32 but B is 40x32/));
  await sharp(join(dir, 'train/A/p.png')).toFile(join(dir, 'train/A/r.png'));
  await rm(join(dir, 'train/B/q.png'));
  await rm(join(dir, 'train/A/q.png'));
  await writeImage(join(dir, 'train/B/r.png'), 32, 32);
  const log = recorder();
  assert.deepEqual((await checkDataset(dir, { log })).counts, { train: 2, test: 0 });
  assert.match(log.warnings.join('\n'), /no test pairs/);
});

test('an empty dataset folder: no training pairs', async () => {
  const dir = await tempDir();
  await assert.rejects(
    checkDataset(dir),
    isUserError(/no dataset\.json and no images in train\/A and train\/B: run pix2pix prepare first/),
  );
});

test('dataset.json size disagreeing with the files is reported', async () => {
  const dir = await dataset();
  const info = JSON.parse(await readFile(join(dir, 'dataset.json'), 'utf8'));
  info.size = 64;
  await writeFile(join(dir, 'dataset.json'), JSON.stringify(info));
  await assert.rejects(checkDataset(dir), isUserError(/is 32x32, dataset\.json says 64x64/));
});
