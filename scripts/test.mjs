#!/usr/bin/env node
// Runs lint, typecheck, then every test/**/*.test.ts with node's own test runner.
// Node 20's `--test` cannot glob .ts files itself, so the list is built here.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function run(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
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

const filter = process.argv.slice(2);
if (filter.length === 0) {
  run('npx', ['biome', 'check', 'src', 'test', 'bench', 'scripts']);
  run('npx', ['tsc', '-p', 'tsconfig.json', '--noEmit']);
}
const files = filter.length ? filter : testFiles('test');
run(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', ...files]);
