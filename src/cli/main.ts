import { Command, CommanderError } from 'commander';
import { UserError } from '../util/log.js';
import { benchCommand } from './commands/bench.js';
import { compareCommand } from './commands/compare.js';
import { demoCommand } from './commands/demo.js';
import { evalCommand } from './commands/eval.js';
import { exportCommand } from './commands/export.js';
import { infoCommand } from './commands/info.js';
import { prepareCommand } from './commands/prepare.js';
import { serveCommand } from './commands/serve.js';
import { trainCommand } from './commands/train.js';
import { translateCommand } from './commands/translate.js';

const program = new Command('pix2pix')
  .description('Pix2Pix image-to-image translation that trains in TypeScript')
  .option('--verbose', 'print stack traces of errors')
  .exitOverride()
  .configureOutput({ writeErr: (s) => process.stderr.write(s) });

for (const cmd of [
  prepareCommand(),
  trainCommand(),
  evalCommand(),
  compareCommand(),
  translateCommand(),
  serveCommand(),
  exportCommand(),
  infoCommand(),
  demoCommand(),
  benchCommand(),
]) {
  program.addCommand(cmd.exitOverride());
}

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) {
    // Commander has already printed its one-line message (or the help text).
    process.exitCode = e.exitCode;
  } else {
    const verbose = process.argv.includes('--verbose');
    const msg = e instanceof Error ? e.message : String(e);
    process.stderr.write(
      `error: ${msg}${e instanceof UserError || verbose ? '' : ' (--verbose shows where)'}\n`,
    );
    if (verbose && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
    const code = (e as { exitCode?: unknown }).exitCode;
    process.exitCode = typeof code === 'number' ? code : 1;
  }
}
