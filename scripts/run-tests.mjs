#!/usr/bin/env node
// Runs the test files named on the command line with node:test's run(), in the order given (`node
// --test` sorts them by path, so the longest file started last), P2P_TEST_CONCURRENCY at a time (2),
// reported as `--test-reporter=spec` does; exits 1 if a test failed. scripts/test.mjs starts it.
import { run } from 'node:test';
import { spec } from 'node:test/reporters';

const concurrency = Number(process.env.P2P_TEST_CONCURRENCY) || 2;
const tests = run({ files: process.argv.slice(2), concurrency });
tests.on('test:fail', (e) => {
  if (!e.todo) process.exitCode = 1;
});
tests.compose(spec).pipe(process.stdout);
