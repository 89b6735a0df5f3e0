import { Command } from 'commander';
import { consoleLogger, UserError } from '../../util/log.js';
import { isLoopback, serve } from '../../web/server.js';
import { intArg } from '../args.js';

export function serveCommand(): Command {
  return new Command('serve')
    .description(
      'Serve a live dashboard of the runs under a folder (loss and PSNR/SSIM curves, samples, checkpoints, compare reports), a try-it page that runs a generator in the browser, and a train page that trains in the browser tab (WebGPU, else WASM) on the datasets under --data',
    )
    .requiredOption('--runs <dir>', 'folder of runs (made by train, or compare folders holding runs)')
    .option('--data <dir>', 'folder of prepared datasets the train page (/train) may train on, read-only')
    .option('--port <n>', 'port to listen on (0 picks a free one)', intArg, 8080)
    .option('--host <address>', 'address to listen on; the default answers this machine only', '127.0.0.1')
    .option('--json', 'print one JSON line with the URL once listening')
    .action(async (f: { runs: string; data?: string; port: number; host: string; json?: boolean }) => {
      if (f.port < 0 || f.port > 65535)
        throw new UserError(`--port ${f.port} is not a port number (0-65535)`);
      if (!isLoopback(f.host)) {
        consoleLogger.warn(
          `listening on ${f.host}: anyone who can reach this machine can read the runs under ${f.runs}`,
        );
      }
      const handle = await serve({
        runs: f.runs,
        data: f.data,
        port: f.port,
        host: f.host,
        log: consoleLogger,
      });
      consoleLogger.info(`serving ${f.runs} at ${handle.url} (Ctrl-C stops)`);
      if (f.json) process.stdout.write(`${JSON.stringify({ url: handle.url, runs: f.runs })}\n`);
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          handle.close().then(resolve, resolve);
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
      consoleLogger.info('stopped');
    });
}
