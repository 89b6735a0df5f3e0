#!/usr/bin/env node
// The CLI is TypeScript run through tsx, so a checkout needs no build step before use.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
