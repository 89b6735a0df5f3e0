#!/usr/bin/env node
// In a checkout the CLI is the TypeScript in src/, run through tsx, so no build step is needed; the
// npm package ships no src/ but the compiled dist/, which plain Node runs. The test suite runs a
// compiled copy of the checkout (scripts/test.mjs: build/js, with a copy of this file in its bin/):
// there src/ beside this file holds JavaScript, run as it is.
import { existsSync } from 'node:fs';

const source = new URL('../src/cli/main.ts', import.meta.url);
const compiled = new URL('../src/cli/main.js', import.meta.url);
if (existsSync(source)) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(source.href);
} else if (existsSync(compiled)) {
  await import(compiled.href);
} else {
  await import('../dist/src/cli/main.js');
}
