// `npm run bench:page`: the train page's training speed in headless Chromium (Debian's), on WebGPU
// (the adapter Chromium gives: SwiftShader where there is no GPU) and on WASM, at 32 and 64 px.
// The page trains a served synthetic dataset from URL settings; this script notes when each step
// appears in the page's status and reports the median step time after the first two (the first
// compiles the WebGPU shaders / WASM kernels). Timings on SwiftShader say nothing of a real GPU.
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Page } from 'playwright-core';
import { writeSyntheticDataset } from '../src/data/synthetic.js';
import { serve } from '../src/web/server.js';
import type { TrainStatus } from '../src/web/train-types.js';

const CHROMIUM = '/usr/bin/chromium';
const WEBGPU = ['--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader', '--enable-features=Vulkan'];

interface Case {
  backend: 'webgpu' | 'wasm';
  size: number;
  steps: number;
}

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : fallback;
};
const ngf = Number(arg('ngf', '16'));
const batch = Number(arg('batch', '4'));
const steps = Number(arg('steps', '8'));
const cases: Case[] = [32, 64].flatMap((size) =>
  (['webgpu', 'wasm'] as const).map((backend) => ({ backend, size, steps })),
);

async function status(page: Page): Promise<TrainStatus> {
  return JSON.parse((await page.evaluate(() => document.body.dataset.trainStatus)) ?? '{}') as TrainStatus;
}

/** Seconds each step took, from when the page's status first showed it. */
async function stepTimes(page: Page, c: Case): Promise<{ times: number[]; end: TrainStatus }> {
  const seen = new Map<number, number>();
  for (;;) {
    const s = await status(page);
    if (s.step && !seen.has(s.step)) seen.set(s.step, performance.now());
    if (s.state === 'done' || s.state === 'error') {
      const at = [...seen.entries()].sort((x, y) => x[0] - y[0]);
      const times = at.slice(1).flatMap(([k, t], i) => (k === at[i]![0] + 1 ? [(t - at[i]![1]) / 1000] : []));
      return { times, end: s };
    }
    if (seen.size === 0 && s.state === 'idle' && performance.now() > 600_000)
      throw new Error(`${c.backend} never started`);
    await page.waitForTimeout(20);
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s[(s.length - 1) >> 1]! + s[s.length >> 1]!) / 2 : Number.NaN;
};

async function main(): Promise<void> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is not installed (apt-get install chromium)`);
  const root = join(tmpdir(), `p2p-bench-page-${process.pid}`);
  await mkdir(join(root, 'runs'), { recursive: true });
  await writeSyntheticDataset(join(root, 'data', 'shapes'), { count: 40, size: 64, seed: 1 });
  const srv = await serve({ runs: join(root, 'runs'), data: join(root, 'data'), port: 0 });
  const rows: string[] = [];
  let version = '';
  try {
    for (const c of cases) {
      const browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: c.backend === 'webgpu' ? WEBGPU : [],
      });
      version = browser.version();
      try {
        const page = await browser.newPage();
        await page.goto(
          `${srv.url}train?dataset=shapes&size=${c.size}&ngf=${ngf}&batch=${batch}&steps=${c.steps}&saveEvery=1000&seed=${c.size}&backend=${c.backend}&autostart=1`,
        );
        const { times, end } = await stepTimes(page, c);
        if (end.state !== 'done') throw new Error(`${c.backend} ${c.size} px: ${end.error}`);
        // Steps 2.. (the first compiles); the evaluation at the epoch's end is in its step's time.
        const later = times.slice(1);
        const m = median(later);
        rows.push(
          `| ${end.backend}${end.adapter ? ` (${end.adapter.split(';')[0]})` : ''} | ${c.size} | ${ngf} | ${batch} | ${times[0]?.toFixed(2) ?? '-'} | ${m.toFixed(2)} | ${(1 / m).toFixed(3)} | ${(batch / m).toFixed(2)} | ${later.length} |`,
        );
        console.error(rows.at(-1));
      } finally {
        await browser.close();
      }
    }
  } finally {
    await srv.close();
    await rm(root, { recursive: true, force: true });
  }
  console.log(
    `Train page, Chromium ${version}, ngf ${ngf}, batch ${batch}, ${steps} steps a case; the step time is the median of steps 3..${steps}:\n`,
  );
  console.log(
    '| backend (adapter) | size px | ngf | batch | step 2 s | step s (median) | steps/s | images/s | steps timed |',
  );
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of rows) console.log(r);
}

main().catch((e: unknown) => {
  console.error(`error: ${(e as Error).message}`);
  process.exit(1);
});
