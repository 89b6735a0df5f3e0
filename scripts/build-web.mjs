#!/usr/bin/env node
// Bundles the browser side of `pix2pix serve` (src/web/client) into dist/web with esbuild. `serve`
// does the same on demand in a checkout; the npm package ships the result.
const { register } = await import('tsx/esm/api');
register();
const { buildWebBundle } = await import(new URL('../src/web/build.ts', import.meta.url).href);
const r = await buildWebBundle();
for (const f of r.files)
  process.stderr.write(`${f.name.padEnd(28)} ${(f.bytes / 1024).toFixed(1).padStart(8)} kB\n`);
process.stderr.write(`web bundle written to ${r.dir} in ${r.seconds.toFixed(1)} s\n`);
