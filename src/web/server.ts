// `pix2pix serve`: a node:http server (loopback by default) for the runs under one folder: a dashboard
// per run that follows training live (server-sent events), a comparison view for compare folders, and
// a try-it page that runs a checkpoint's generator in the browser. It serves its own bundle and the
// tfjs WASM binaries, and files below --runs, nothing else (see paths.ts for the checks).
// The parts: routes.ts (which handler answers), pages.ts, static.ts (files with ETags), events.ts and
// watchers.ts (live updates), respond.ts (headers and error answers).
import { realpath, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Logger, silentLogger, UserError } from '../util/log.js';
import { ensureWebBundle } from './build.js';
import { EventStreams } from './events.js';
import { answerClientError } from './respond.js';
import { handleRequest, isLoopback, type ServerState } from './routes.js';
import { wasmDir } from './static.js';

export { isLoopback };

export interface ServeOptions {
  /** The folder of runs: runs and compare folders (runs one level down) are listed. */
  runs: string;
  /** A folder of prepared datasets the train page may train on (read-only); none without it. */
  data?: string;
  /** Default 8080; 0 picks a free port (see the handle's `port`). */
  port?: number;
  /** Default 127.0.0.1 (loopback only). */
  host?: string;
  log?: Logger;
  /** A folder holding the built bundle (dashboard.js, try.js, style.css); default dist/web, built on demand. */
  assets?: string;
  /** Live-update (SSE) connections open at once; more get 503. Default 64. */
  maxEventClients?: number;
  /** Heartbeat comment on every SSE connection every this many ms. Default 15000. */
  heartbeatMs?: number;
  /** How often a watched run's files are polled, ms. Default 500. */
  pollMs?: number;
}

export interface ServeHandle {
  /** http://host:port/ */
  url: string;
  host: string;
  port: number;
  server: Server;
  /** Live-update connections open now. */
  eventClients(): number;
  /** Ends the live-update streams, stops polling and closes the server. */
  close(): Promise<void>;
}

/** Slow or oversized requests are cut off (answerClientError says why) before they hold a socket long. */
const SERVER_LIMITS = {
  maxHeaderSize: 32 * 1024,
  requestTimeout: 30_000,
  headersTimeout: 15_000,
  keepAliveTimeout: 5_000,
};

/** The real path of a folder option, or a one-line UserError saying what is wrong with it. */
async function existingFolder(flag: string, path: string, what: string): Promise<string> {
  let real: string;
  try {
    real = await realpath(path);
    if ((await stat(real)).isDirectory()) return real;
  } catch {
    throw new UserError(`${flag} ${path} does not exist: point it at ${what}`);
  }
  throw new UserError(`${flag} ${path} is not a folder`);
}

/** Listens, with the usual failures (port taken, no such address, privileged port) as one-line UserErrors. */
function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException) => {
      if (e.code === 'EADDRINUSE') {
        reject(new UserError(`port ${port} on ${host} is in use: pass another --port (0 picks a free one)`));
      } else if (e.code === 'EADDRNOTAVAIL' || e.code === 'ENOTFOUND') {
        reject(new UserError(`cannot listen on --host ${host}: no such local address`));
      } else if (e.code === 'EACCES') {
        reject(new UserError(`no permission to listen on port ${port}: use a port above 1023`));
      } else reject(e);
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/**
 * Starts the server. Resolves once it listens; `close()` stops it. Nothing is printed: `log` gets the
 * bundle build and server-side faults.
 */
export async function serve(opts: ServeOptions): Promise<ServeHandle> {
  const log = opts.log ?? silentLogger;
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? 8080;
  const rootReal = await existingFolder('--runs', opts.runs, 'a folder of runs (made by train or compare)');
  const dataReal =
    opts.data === undefined
      ? undefined
      : await existingFolder('--data', opts.data, 'a folder of prepared datasets');
  const assetsReal = await realpath(opts.assets ?? (await ensureWebBundle({ log })));
  const wasmReal = await realpath(wasmDir());
  const events = new EventStreams({
    rootReal,
    maxClients: opts.maxEventClients ?? 64,
    heartbeatMs: opts.heartbeatMs ?? 15000,
    pollMs: opts.pollMs ?? 500,
  });
  const loopbackOnly = isLoopback(host);
  const state: ServerState = { rootReal, dataReal, assetsReal, wasmReal, loopbackOnly, events, log };
  const server = createServer(SERVER_LIMITS, (req, res) => handleRequest(state, req, res));
  server.maxConnections = 1024;
  server.on('clientError', answerClientError);
  await listen(server, port, host).catch((e: unknown) => {
    events.close();
    throw e;
  });
  const address = server.address() as AddressInfo;
  const urlHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${urlHost}:${address.port}/`,
    host: address.address,
    port: address.port,
    server,
    eventClients: () => events.clients.size,
    close() {
      closing ??= new Promise<void>((resolve) => {
        events.close();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
