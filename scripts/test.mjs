#!/usr/bin/env node
// Runs lint, typecheck, then every test/**/*.test.ts with node's own test runner.
//
// The typecheck also writes the JavaScript (tsc, to build/js: src/, test/ and bench/ as they are in the
// checkout, with a copy of bin/pix2pix.js and links to the files that are not TypeScript), and the
// suite runs that. Through tsx, every test file and every CLI a test starts loaded its modules (and
// tfjs) through tsx's loader thread: ~1 s of CPU each, for ~150 processes. `node scripts/test.mjs
// FILE...` runs the named .ts files through tsx, with no lint or build first.
//
// The tests run with TMPDIR set to a fresh folder, and the suite fails if anything is left in it at
// the end, naming what (a test's folders come from tempDir in test/helpers.ts, removed when its file
// ends). The folder is removed afterwards either way.
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
} from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join, relative, resolve } from 'node:path';

function run(cmd, args, env) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', env });
  return r.status ?? 1;
}

function testFiles(dir) {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) return testFiles(p);
      return p.endsWith('.test.js') ? [p] : [];
    });
}

const hasTypeScript = (dir) =>
  readdirSync(dir, { withFileTypes: true }).some((e) =>
    e.isDirectory() ? hasTypeScript(join(dir, e.name)) : e.name.endsWith('.ts'),
  );

/** Links into `to` what tsc does not write: every file of `from` that is not TypeScript (folders with none as one link). */
function linkOthers(from, to) {
  for (const e of readdirSync(from, { withFileTypes: true })) {
    const [src, dst] = [join(from, e.name), join(to, e.name)];
    if (e.isDirectory() && hasTypeScript(src)) linkOthers(src, dst);
    else if (e.isDirectory() || !e.name.endsWith('.ts')) {
      mkdirSync(to, { recursive: true });
      symlinkSync(resolve(src), dst);
    }
  }
}

/** The compiled tree the suite runs (see the top of this file). */
const BUILD = 'build/js';

/** Sizes in MB of what is left in `dir`, largest first, as `name (12.3 MB)`. */
function describeLeft(dir, names) {
  const size = (p) => {
    const s = lstatSync(p);
    return s.isDirectory() ? readdirSync(p).reduce((a, n) => a + size(join(p, n)), 0) : s.size;
  };
  return names.map((n) => `${n} (${(size(join(dir, n)) / 1e6).toFixed(1)} MB)`).join(', ');
}

const filter = process.argv.slice(2);
if (filter.length === 0) {
  rmSync(BUILD, { recursive: true, force: true });
  for (const [cmd, args] of [
    ['npx', ['biome', 'check', 'src', 'test', 'bench', 'scripts']],
    ['npx', ['tsc', '-p', 'tsconfig.json', '--outDir', BUILD, '--sourceMap']],
    // Imports only point down the layers (.dependency-cruiser.cjs names the rule an import breaks).
    ['npm', ['run', '--silent', 'lint:layers']],
  ]) {
    const status = run(cmd, args);
    if (status !== 0) process.exit(status);
  }
  for (const dir of ['src', 'test', 'bench']) linkOthers(dir, join(BUILD, dir));
  mkdirSync(join(BUILD, 'bin'));
  copyFileSync('bin/pix2pix.js', join(BUILD, 'bin', 'pix2pix.js'));
  // The browser tests keep their screenshots in the checkout's test-artifacts/, found from the test file.
  mkdirSync('test-artifacts', { recursive: true });
  symlinkSync(resolve('test-artifacts'), join(BUILD, 'test-artifacts'));
}
// The longest files start first, so that with two at a time the short ones fill in beside them
// instead of one long file running alone at the end (the train page did, with a core idle for a
// minute). The train page (Chromium's GPU process on SwiftShader, whose threads spin while they wait)
// does not start beside the WebGPU files in Node: a run that started them together took 283 s, this
// order 265 s.
const SLOW_FIRST = [
  'test/web/train-page.test.ts',
  'test/experiment/queue.test.ts',
  'test/package.test.ts',
  'test/backend/webgpu-run.test.ts',
  'test/backend/native-conv.test.ts',
  'test/backend/webgpu.test.ts',
  'test/cli/cli.test.ts',
  'test/web/browser.test.ts',
];
const files = filter.length
  ? filter
  : testFiles(join(BUILD, 'test')).sort((a, b) => slowRank(a) - slowRank(b) || (a < b ? -1 : 1));
function slowRank(f) {
  const i = SLOW_FIRST.indexOf(relative(BUILD, f).replace(/\.js$/, '.ts'));
  return i < 0 ? SLOW_FIRST.length : i;
}
// How many test files run at once (scripts/run-tests.mjs reads P2P_TEST_CONCURRENCY too).
const concurrency = Number(process.env.P2P_TEST_CONCURRENCY) || 2;

const systemTmp = tmpdir();
const testTmp = mkdtempSync(join(systemTmp, 'p2p-test-run-'));
// tsx keeps its compiled-source cache in $TMPDIR/tsx-<uid> for every later run: that folder is the
// machine's own (a link to it), not something a test left, so the check below does not count it.
const uid = process.geteuid ? process.geteuid() : userInfo().username;
const tsxCache = `tsx-${uid}`;
mkdirSync(join(systemTmp, tsxCache), { recursive: true });
symlinkSync(join(systemTmp, tsxCache), join(testTmp, tsxCache));

// Ctrl-C reaches the test runner too (same process group); this process waits for it, then cleans up.
process.on('SIGINT', () => {});
const started = performance.now();
// Two test files at a time on two cores, each native one with an OpenMP thread per core: threads that
// spin while they wait for work (OpenMP's default) take the core from the other file's process, and
// the suite ran ~30% longer on those files. Passive threads sleep instead; a user's own setting wins.
const omp = process.env.OMP_WAIT_POLICY ? {} : { OMP_WAIT_POLICY: 'passive' };
const status = run(
  process.execPath,
  [
    // The source maps put the .ts file and line in a failure's stack (~0.1 s of CPU a file).
    ...(filter.length ? ['--import', 'tsx'] : ['--enable-source-maps']),
    'scripts/run-tests.mjs',
    ...files,
  ],
  { ...process.env, ...omp, TMPDIR: testTmp },
);
console.log(
  `test time: ${((performance.now() - started) / 1000).toFixed(0)} s for ${files.length} files, ${concurrency} at a time`,
);

rmSync(join(testTmp, tsxCache));
const left = readdirSync(testTmp).sort();
if (left.length > 0) {
  console.error(
    `\ntests left ${left.length} thing(s) in the temp directory ${testTmp} (now removed): ${describeLeft(testTmp, left)}`,
  );
}
rmSync(testTmp, { recursive: true, force: true });
process.exit(status !== 0 ? status : left.length > 0 ? 1 : 0);
