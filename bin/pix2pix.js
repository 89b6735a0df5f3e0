#!/usr/bin/env node
// In a checkout the CLI is the TypeScript in src/, run through tsx, so no build step is needed; the
// npm package ships no src/ but the compiled dist/, which plain Node runs.
import { existsSync } from 'node:fs';

const source = new URL('../src/cli/main.ts', import.meta.url);
if (existsSync(source)) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(source.href);
} else {
  await import('../dist/src/cli/main.js');
}
