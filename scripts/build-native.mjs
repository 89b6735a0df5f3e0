#!/usr/bin/env node
// Builds the native backend's addon (native/, oneDNN + OpenMP) with node-gyp. Setup must never die
// on it: where it cannot be built this prints one line saying why and exits 0, and the `auto`
// backend then falls back to WASM. `--strict` (CI) makes a failed build exit 1 instead.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const nativeDir = join(root, 'native');
const addon = join(nativeDir, 'build', 'Release', 'pix2pix_native.node');
const strict = process.argv.includes('--strict');

function giveUp(reason) {
  console.log(`native addon not built: ${reason}`);
  process.exit(strict ? 1 : 0);
}

const dnnlHeader = ['/usr/include/oneapi/dnnl/dnnl.hpp', '/usr/local/include/oneapi/dnnl/dnnl.hpp'].find(
  (p) => existsSync(p),
);
if (!dnnlHeader) giveUp('oneDNN headers not found (apt-get install libdnnl-dev)');

const gypCandidates = [
  join(root, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  '/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js',
  '/usr/share/nodejs/node-gyp/bin/node-gyp.js',
];
const gyp = gypCandidates.find((p) => existsSync(p));
if (!gyp) giveUp('node-gyp not found (npm install)');

const args = [gyp, 'rebuild', '--directory', nativeDir, '--jobs', '2'];
// Use this node's own headers where the distribution ships them: nothing to download.
const prefix = dirname(dirname(process.execPath));
if (!process.env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'node_api.h'))) {
  args.push(`--nodedir=${prefix}`);
}
const r = spawnSync(process.execPath, args, { encoding: 'utf8' });
if (r.status !== 0) {
  const log = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n');
  const err = log.filter((l) => /error/i.test(l)).slice(0, 5);
  if (process.env.CI || strict) console.error((err.length ? err : log.slice(-10)).join('\n'));
  giveUp(`node-gyp failed${err[0] ? `: ${err[0].trim()}` : ` (exit ${r.status})`}`);
}

try {
  const info = createRequire(import.meta.url)(addon).info();
  console.log(`native addon built: oneDNN ${info.onednn}, ${info.threads} OpenMP threads (${addon})`);
} catch (e) {
  giveUp(`built but does not load: ${String(e.message).split('\n')[0]}`);
}
