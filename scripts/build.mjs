#!/usr/bin/env node
// Compiles the library, the CLI and the bench to JavaScript with types in dist/ (what the npm package
// ships, so a user's Node needs no TypeScript loader), and copies the files they read at run time.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';

function run(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

rmSync('dist/src', { recursive: true, force: true });
rmSync('dist/bench', { recursive: true, force: true });
run('npx', ['tsc', '-p', 'tsconfig.build.json']);
mkdirSync('dist/bench', { recursive: true });
copyFileSync('bench/pytorch_ref.py', 'dist/bench/pytorch_ref.py');
if (existsSync('scripts/build-web.mjs')) run(process.execPath, ['scripts/build-web.mjs']);
