import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { lstat, readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { crc32, type ZipEntry, zip, zipParts } from '../../src/util/zip.js';
import { extract, tempDir } from '../helpers.js';

/** Every file below `dir` (links as links), relative with '/'. */
async function tree(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    out.push(...(e.isDirectory() ? await tree(dir, rel) : [rel]));
  }
  return out.sort();
}

describe('zip', () => {
  const files: ZipEntry[] = [
    { path: 'config.json', data: new TextEncoder().encode('{"a": 1}\n') },
    { path: 'empty.txt', data: new Uint8Array(0) },
    { path: 'checkpoints/epoch-0001/weights.bin', data: randomBytes(300_001) },
    // A view into a larger buffer: only its own bytes go in.
    { path: 'checkpoints/epoch-0001/part.bin', data: randomBytes(1000).subarray(17, 530) },
    { path: 'naïve photo 🙂/ü.json', data: new TextEncoder().encode('ü') },
  ];
  const link: ZipEntry = { path: 'checkpoints/latest', symlinkTo: 'epoch-0001' };

  it('crc32 is the standard CRC-32 (check value of "123456789")', () => {
    assert.equal(crc32(new TextEncoder().encode('123456789')), 0xcbf43926);
    assert.equal(crc32(new Uint8Array(0)), 0);
  });

  for (const tool of ['unzip', 'python'] as const) {
    it(`${tool} extracts every file byte-identically, UTF-8 names included; the symlink entry ${tool === 'unzip' ? 'as a link' : 'as a file holding its target'}`, async () => {
      const root = await tempDir('p2p-zip-');
      const archive = join(root, 'run.zip');
      await writeFile(archive, zip([...files, link]));
      const out = join(root, 'out');
      extract(tool, archive, out);
      assert.deepEqual(await tree(out), [...files.map((f) => f.path), link.path].sort());
      for (const f of files) {
        const got = await readFile(join(out, f.path));
        assert.equal(got.length, f.data!.length, f.path);
        assert.ok(got.equals(f.data!), f.path);
      }
      const latest = join(out, 'checkpoints', 'latest');
      if (tool === 'unzip') {
        assert.ok((await lstat(latest)).isSymbolicLink());
        assert.equal(await readlink(latest), 'epoch-0001');
      } else {
        assert.ok((await lstat(latest)).isFile());
        assert.equal(await readFile(latest, 'utf8'), 'epoch-0001');
      }
    });
  }

  it('zipParts holds the entries uncopied and concatenates to zip (same date, same bytes)', () => {
    const date = new Date(2026, 11, 6, 10, 30, 42);
    const parts = zipParts([...files, link], { date });
    assert.ok(parts.includes(files[2]!.data!), 'the data array itself is a part');
    const joined = Buffer.concat(parts);
    assert.ok(joined.equals(zip([...files, link], { date })));
  });

  it('refuses what a zip without Zip64 cannot hold, bad names and duplicates, with one line each', () => {
    // A stand-in for 4 GiB of data: the size is checked before any byte is read.
    const huge = { byteLength: 2 ** 32, length: 2 ** 32 } as Uint8Array;
    assert.throws(
      () => zip([{ path: 'big.bin', data: huge }]),
      /^Error: zip: 'big.bin' would end past 4 GiB/,
    );
    for (const path of ['/abs', '../up', 'a//b', 'a\\b', 'dir/']) {
      assert.throws(() => zip([{ path, data: new Uint8Array(1) }]), /must be a relative '\/'-separated path/);
    }
    assert.throws(
      () => zip([files[0]!, { ...files[0]! }]),
      /^Error: zip: entry 'config.json' is given twice$/,
    );
    assert.throws(
      () => zip(Array.from({ length: 65_536 }, (_, i) => ({ path: `f${i}` }))),
      /65536 entries are more than the 65535/,
    );
  });
});
