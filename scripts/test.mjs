#!/usr/bin/env node
// Runs lint, typecheck, then every test/**/*.test.ts with node's own test runner.
// Node 20's `--test` cannot glob .ts files itself, so the list is built here.
//
// The tests run with TMPDIR set to a fresh folder, and the suite fails if anything is left in it at
// the end, naming what (a test's folders come from tempDir in test/helpers.ts, removed when its file
// ends). The folder is removed afterwards either way.
import { spawnSync } from 'node:child_process';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

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
      return p.endsWith('.test.ts') ? [p] : [];
    });
}

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
  for (const [cmd, args] of [
    ['npx', ['biome', 'check', 'src', 'test', 'bench', 'scripts']],
    ['npx', ['tsc', '-p', 'tsconfig.json', '--noEmit']],
    // Imports only point down the layers (.dependency-cruiser.cjs names the rule an import breaks).
    ['npm', ['run', '--silent', 'lint:layers']],
  ]) {
    const status = run(cmd, args);
    if (status !== 0) process.exit(status);
  }
}
// The files that take minutes start first, so that with two at a time the short ones fill in beside
// them instead of one long file running alone at the end.
const SLOW_FIRST = [
  'test/web/train-page.test.ts',
  'test/backend/webgpu.test.ts',
  'test/backend/webgpu-run.test.ts',
];
const files = filter.length
  ? filter
  : testFiles('test').sort((a, b) => slowRank(a) - slowRank(b) || (a < b ? -1 : 1));
function slowRank(f) {
  const i = SLOW_FIRST.indexOf(f);
  return i < 0 ? SLOW_FIRST.length : i;
}
// How many test files run at once (P2P_TEST_CONCURRENCY overrides it).
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
const status = run(
  process.execPath,
  ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...files],
  { ...process.env, TMPDIR: testTmp },
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
