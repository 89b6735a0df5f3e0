import type * as tfl from '@tensorflow/tfjs-layers';
import { Command } from 'commander';
import { setupBackend } from '../../backend/index.js';
import { unetDepth } from '../../models/unet.js';
import {
  generatorDepth,
  type TrainConfig,
  trainingSide,
  trainOption,
  validateConfig,
} from '../../train/config.js';
import { buildNetworks } from '../../train/step.js';
import { intArg } from '../args.js';
import { cliOption } from './train.js';

interface LayerRow {
  name: string;
  type: string;
  outputShape: (number | null)[];
  params: number;
}

/** The training options that change the networks, with the flags, defaults and help `train` has. */
const MODEL_OPTIONS = [
  'netD',
  'ndf',
  'norm',
  'ngf',
  'depth',
  'dropout',
  'residual',
  'residualBlur',
  'fullRes',
  'crop',
] as const;

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
  const cmd = new Command('info')
    .description("Print each network's layers, output shapes and parameter counts")
    .option('--size <px>', 'image size (a power of two >= 32)', intArg, 256);
  for (const key of MODEL_OPTIONS) cmd.addOption(cliOption(trainOption(key)!));
  return cmd
    .option('--json', 'print one JSON result line')
    .action(async (o: Record<string, unknown> & { size: number; json?: boolean }) => {
      unetDepth(o.size);
      const given: Partial<TrainConfig> = { size: o.size };
      for (const key of MODEL_OPTIONS) {
        const v = o[cliOption(trainOption(key)!).attributeName()];
        if (v !== undefined) Object.assign(given, { [key]: v });
      }
      const c = validateConfig(given);
      // Building only initialises weights: the plain cpu backend is enough and always there.
      await setupBackend('cpu');
      const { G, D } = buildNetworks(c);
      const nets = { generator: describe(G), discriminator: describe(D) };
      const options = {
        ngf: c.ngf,
        ndf: c.ndf,
        depth: generatorDepth(c),
        dropout: c.dropout,
        residual: c.residual,
        residualBlur: c.residualBlur,
        fullRes: c.fullRes,
        trainingSide: trainingSide(c),
      };
      if (o.json) {
        process.stdout.write(`${JSON.stringify({ size: o.size, ...options, ...nets })}\n`);
      } else {
        const crop = c.crop ? ` (D built at the --crop ${c.crop} it trains on)` : '';
        process.stdout.write(
          `generator: ngf ${c.ngf}, depth ${options.depth}, dropout ${c.dropout ? 'on' : 'off'}, ${c.residual ? `residual${c.residualBlur ? ` (on a sigma ${c.residualBlur} px blur of the input)` : ''}` : 'tanh'} output${c.fullRes ? ', a full-resolution level' : ''}${crop}\n${table(nets.generator)}\n\ndiscriminator: ${c.netD}, ndf ${c.ndf}\n${table(nets.discriminator)}\n`,
        );
      }
    });
}
