// Where files that ship beside the code are found (third_party/onnx, native/build, the web bundle,
// package.json): from this module's own location, which is src/util in a checkout and dist/src/util
// in the npm package.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

/** The package's root folder: the first one above this module holding package.json and bin/pix2pix.js. */
export function packageRoot(): string {
  if (root) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'bin', 'pix2pix.js'))) {
      root = dir;
      return dir;
    }
    const up = dirname(dir);
    if (up === dir)
      throw new Error('cannot find the pix2pix-ts package folder (package.json, bin/pix2pix.js)');
    dir = up;
  }
}

let version: string | undefined;

/** pix2pix-ts's own version, from its package.json. */
export function packageVersion(): string {
  version ??= (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version?: string })
    .version;
  return version ?? 'unknown';
}
