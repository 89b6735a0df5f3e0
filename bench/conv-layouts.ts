/**
 * Times every convolution pass of the pix2pix models in each of the addon's layout modes, to choose
 * per layer between oneDNN on tfjs's plain NHWC/HWIO memory and its own blocked layouts (with
 * reorders at the kernel boundary). Usage: tsx bench/conv-layouts.ts [batch] [modes, e.g. 1,2,3]
 */
import { loadAddon } from '../src/backend/native-addon.js';
import { type ConvLayer, discriminatorLayers, generatorLayers, macs } from './conv-layers.js';

const MODE_NAMES: Record<number, string> = {
  0: 'auto',
  1: 'plain',
  2: 'blocked',
  3: 'plain+anyW',
  4: 'gemm+col2im (D only)',
};

export function paramsOf(l: ConvLayer, batch: number, mode: number): number[] {
  return [batch, l.ih, l.ih, l.ic, l.oh, l.oh, l.oc, l.k, l.k, l.stride, l.stride, l.pad, l.pad, 1, 1, mode];
}

function random(n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.random() - 0.5;
  return a;
}

function best(fn: () => void, reps: number): number {
  fn();
  let b = Number.POSITIVE_INFINITY;
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    fn();
    b = Math.min(b, performance.now() - t);
  }
  return b;
}

async function main() {
  const batch = Number(process.argv[2] ?? 4);
  const modes = (process.argv[3] ?? '1,2,3').split(',').map(Number);
  const addon = loadAddon();
  const layers = [...generatorLayers(256), ...discriminatorLayers(256)];
  const totals: Record<string, number> = {};
  console.log(
    `batch ${batch}; ms per pass (GFLOP/s); F = conv forward, D = backward-data, W = backward-weights`,
  );
  for (const l of layers) {
    const x = random(batch * l.ih * l.ih * l.ic);
    const y = random(batch * l.oh * l.oh * l.oc);
    const w = random(l.k * l.k * l.ic * l.oc);
    const flops = 2 * macs(l, batch);
    const reps = flops > 2e9 ? 2 : 4;
    const cells: string[] = [];
    for (const mode of modes) {
      const p = paramsOf(l, batch, mode);
      const f = best(() => addon.convForward(p, x, w, null, y), reps);
      const d = best(() => addon.convBackwardData(p, y, w, x), reps);
      const wg = best(() => addon.convBackwardWeights(p, x, y, w), reps);
      const name = MODE_NAMES[mode]!;
      totals[name] = (totals[name] ?? 0) + f + d + wg;
      const g = (ms: number) => (flops / ms / 1e6).toFixed(0);
      cells.push(
        `${name}: F ${f.toFixed(1)} (${g(f)}) D ${d.toFixed(1)} (${g(d)}) W ${wg.toFixed(1)} (${g(wg)})`,
      );
      if (process.env['IMPL']) cells.push(addon.convImpl(p));
    }
    console.log(
      `${l.model} ${l.name.padEnd(7)} ${l.ih}x${l.ic}->${l.oh}x${l.oc} k${l.k}s${l.stride} | ${cells.join(' | ')}`,
    );
  }
  console.log(
    'total ms (all three passes, every layer once):',
    Object.entries(totals)
      .map(([k, v]) => `${k} ${v.toFixed(0)}`)
      .join(', '),
  );
}

await main();
