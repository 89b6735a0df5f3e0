import { Command, CommanderError } from 'commander';
import { UserError } from '../util/log.js';

const program = new Command('pix2pix')
  .description('Pix2Pix image-to-image translation that trains in TypeScript')
  .option('--verbose', 'print stack traces of errors')
  .exitOverride()
  .configureOutput({ writeErr: (s) => process.stderr.write(s) });

// Each command's module, in the order `--help` lists them. A command's module imports what it runs
// (tfjs, sharp, vega, the web server...): only the one named on the command line is loaded (train
// starts in 0.91 s instead of 1.08 s); help, or a name that is not a command, loads them all.
const COMMANDS: Record<string, () => Promise<Command>> = {
  prepare: async () => (await import('./commands/prepare.js')).prepareCommand(),
  train: async () => (await import('./commands/train.js')).trainCommand(),
  eval: async () => (await import('./commands/eval.js')).evalCommand(),
  compare: async () => (await import('./commands/compare.js')).compareCommand(),
  translate: async () => (await import('./commands/translate.js')).translateCommand(),
  serve: async () => (await import('./commands/serve.js')).serveCommand(),
  export: async () => (await import('./commands/export.js')).exportCommand(),
  info: async () => (await import('./commands/info.js')).infoCommand(),
  demo: async () => (await import('./commands/demo.js')).demoCommand(),
  worker: async () => (await import('./commands/worker.js')).workerCommand(),
  bench: async () => (await import('./commands/bench.js')).benchCommand(),
};
// The root's only option (--verbose) takes no value, so the first word that is not an option is the
// command.
const named = process.argv.slice(2).find((a) => !a.startsWith('-'));
const load = named !== undefined && Object.hasOwn(COMMANDS, named) ? [named] : Object.keys(COMMANDS);
for (const name of load) program.addCommand((await COMMANDS[name]!()).exitOverride());

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
