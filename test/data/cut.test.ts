import assert from 'node:assert/strict';
import { extname, sep } from 'node:path';
import { test } from 'node:test';
import { extensionOf, isHidden, stemOf } from '../../src/data/cut.js';

test('extensionOf is node:path extname, and stemOf names a source the same from / or the platform separator', () => {
  for (const p of ['x.png', 'a/b.PNG', 'x.tar.gz', 'x.', '..x', 'a.b/c', 'a/..b.c', 'noext', 'a/b/c.jpeg']) {
    assert.equal(extensionOf(p), extname(p), p);
  }
  assert.equal(stemOf('sub/dir/photo 1.jpg'), 'sub_dir_photo_1');
  assert.equal(stemOf(['sub', 'dir', 'photo 1.jpg'].join(sep)), 'sub_dir_photo_1');
  assert.equal(stemOf('sub\\photo.png'), 'sub_photo');
  assert.deepEqual(['a/.git/x.png', '.DS_Store', 'a/b.png', 'a.b/c.png'].map(isHidden), [
    true,
    true,
    false,
    false,
  ]);
});
