import type * as tfl from '@tensorflow/tfjs-layers';
import { Command, Option } from 'commander';
import { setupBackend } from '../../backend/index.js';
import { NORMS, type NormKind } from '../../models/layers.js';
import { DISCRIMINATORS, type DiscriminatorKind, patchDiscriminator } from '../../models/patchgan.js';
import { unetDepth, unetGenerator } from '../../models/unet.js';
import { intArg } from '../args.js';

interface LayerRow {
  name: string;
  type: string;
  outputShape: (number | null)[];
  params: number;
}

function describe(model: tfl.LayersModel): { name: string; params: number; layers: LayerRow[] } {
  return {
    name: model.name,
    params: model.countParams(),
    layers: model.layers.map((l) => ({
      name: l.name,
      type: l.getClassName(),
      outputShape: l.outputShape as (number | null)[],
      params: l.countParams(),
    })),
  };
}

function table(net: ReturnType<typeof describe>): string {
  const rows = net.layers.map((l) => [
    l.name,
    l.type,
    JSON.stringify(l.outputShape),
    l.params.toLocaleString('en'),
  ]);
  const widths = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i].length)));
  const lines = rows.map(
    (r) => `  ${r[0].padEnd(widths[0])}  ${r[1].padEnd(widths[1])}  ${r[2].padEnd(widths[2])}  ${r[3]}`,
  );
  return `${net.name}: ${net.params.toLocaleString('en')} parameters\n${lines.join('\n')}`;
}

export function infoCommand(): Command {
  return new Command('info')
    .description("Print each network's layers, output shapes and parameter counts")
    .option('--size <px>', 'image size (a power of two >= 32)', intArg, 256)
    .addOption(new Option('--netD <kind>', 'discriminator').choices(DISCRIMINATORS).default('patch16'))
    .addOption(new Option('--norm <kind>', 'normalisation layers').choices(NORMS).default('instance'))
    .option('--json', 'print one JSON result line')
    .action(async (o: { size: number; netD: DiscriminatorKind; norm: NormKind; json?: boolean }) => {
      unetDepth(o.size);
      // Building only initialises weights: the plain cpu backend is enough and always there.
      await setupBackend('cpu');
      const G = unetGenerator({ size: o.size, norm: o.norm });
      const D = patchDiscriminator({ size: o.size, kind: o.netD, norm: o.norm });
      const nets = { generator: describe(G), discriminator: describe(D) };
      if (o.json) {
        process.stdout.write(`${JSON.stringify({ size: o.size, ...nets })}\n`);
      } else {
        process.stdout.write(`${table(nets.generator)}\n\n${table(nets.discriminator)}\n`);
      }
    });
}
