// `pix2pix serve`: a node:http server (loopback by default) for the runs under one folder: a dashboard
// per run that follows training live (server-sent events), a comparison view for compare folders, and
// a try-it page that runs a checkpoint's generator in the browser. It serves its own bundle and the
// tfjs WASM binaries, and files below --runs, nothing else (see paths.ts for the checks).
import type { Stats } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo, Socket } from 'node:net';
import { dirname, extname } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { type Logger, silentLogger, UserError } from '../util/log.js';
import { ensureWebBundle } from './build.js';
import { datasetPairs, listDatasets } from './datasets.js';
import { HttpError, MAX_URL_LENGTH, openInside, parseTarget, type Target } from './paths.js';
import { discoverRuns, type EventSink, findRun, RunWatcher, readRunDetail, runDir } from './runs.js';
import type { RunList } from './types.js';

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

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.jsonl': 'text/plain; charset=utf-8',
  '.csv': 'text/csv; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.log': 'text/plain; charset=utf-8',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
  '.svg': 'image/svg+xml',
  '.wasm': 'application/wasm',
  '.bin': 'application/octet-stream',
  '.onnx': 'application/octet-stream',
};
const contentType = (path: string) =>
  CONTENT_TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream';

/** Headers on every answer. */
const COMMON_HEADERS = {
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

/** The pages' policy: only this server's scripts (and WebAssembly compiled from its .wasm files). */
const PAGE_CSP = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "frame-src 'self'",
  "worker-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'self'",
].join('; ');

/**
 * Run files (report.html, SVG plots) open in a sandbox: shown, but no script in them runs and they
 * cannot act as this origin, whatever a folder under --runs holds.
 */
const FILE_CSP = "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'";

const ASSET_NAME = /^(dashboard|try|train|train-worker|style)\.(js|css)(\.map|\.LEGAL\.txt)?$/;
const WASM_NAME = /^tfjs-backend-wasm(-simd|-threaded-simd)?\.wasm$/;

type Page = 'index' | 'run' | 'try' | 'train';

function pageHtml(page: Page): string {
  const script = page === 'try' || page === 'train' ? page : 'dashboard';
  const title = {
    index: 'pix2pix runs',
    run: 'pix2pix runs',
    try: 'pix2pix: try it',
    train: 'pix2pix: train',
  }[page];
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/style.css">
<script type="module" src="/assets/${script}.js"></script>
</head>
<body data-page="${page}">
<header class="top"><a class="brand" href="/">pix2pix</a><nav><a href="/">runs</a><a href="/try">try it</a><a href="/train">train</a></nav></header>
<main id="app"><p class="muted">loading…</p><noscript>This page needs JavaScript.</noscript></main>
</body>
</html>
`;
}

/** Host names a loopback-only server answers to (a DNS-rebinding page on another name gets 421). */
function isLoopbackHostHeader(host: string | undefined): boolean {
  if (!host) return false;
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.replace(/:\d+$/, '');
  return name === 'localhost' || name === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(name);
}

export const isLoopback = (host: string) =>
  host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);

const etagOf = (st: { ino: number; size: number; mtimeMs: number }) =>
  `"${st.ino.toString(36)}-${st.size.toString(36)}-${Math.round(st.mtimeMs).toString(36)}"`;

/** The folder holding tfjs-backend-wasm's .wasm binaries. */
function wasmDir(): string {
  const require = createRequire(import.meta.url);
  return dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
}

interface SseClient extends EventSink {
  res: ServerResponse;
  runKey: string;
}

/**
 * Starts the server. Resolves once it listens; `close()` stops it. Nothing is printed: `log` gets the
 * bundle build and server-side faults.
 */
export async function serve(opts: ServeOptions): Promise<ServeHandle> {
  const log = opts.log ?? silentLogger;
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? 8080;
  const maxEventClients = opts.maxEventClients ?? 64;
  const heartbeatMs = opts.heartbeatMs ?? 15000;
  const pollMs = opts.pollMs ?? 500;
  let rootReal: string;
  let rootStat: Stats;
  try {
    rootReal = await realpath(opts.runs);
    rootStat = await stat(rootReal);
  } catch {
    throw new UserError(
      `--runs ${opts.runs} does not exist: point it at a folder of runs (made by train or compare)`,
    );
  }
  if (!rootStat.isDirectory()) throw new UserError(`--runs ${opts.runs} is not a folder`);
  let dataReal: string | undefined;
  if (opts.data !== undefined) {
    dataReal = await realpath(opts.data).catch(() => {
      throw new UserError(`--data ${opts.data} does not exist: point it at a folder of prepared datasets`);
    });
    if (!(await stat(dataReal)).isDirectory()) throw new UserError(`--data ${opts.data} is not a folder`);
  }
  const assetsReal = await realpath(opts.assets ?? (await ensureWebBundle({ log })));
  const wasmReal = await realpath(wasmDir());
  const loopbackOnly = isLoopback(host);

  const clients = new Set<SseClient>();
  const watchers = new Map<string, { watcher: RunWatcher; ready: Promise<void>; refs: number }>();

  function setCommon(res: ServerResponse): void {
    for (const [k, v] of Object.entries(COMMON_HEADERS)) res.setHeader(k, v);
  }

  function sendBody(
    res: ServerResponse,
    status: number,
    type: string,
    body: string,
    headers: Record<string, string> = {},
  ): void {
    const buf = Buffer.from(body, 'utf8');
    res.writeHead(status, { 'Content-Type': type, 'Content-Length': String(buf.length), ...headers });
    res.end(buf);
  }

  function sendError(req: IncomingMessage, res: ServerResponse, e: HttpError): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const headers: Record<string, string> = { 'Cache-Control': 'no-store', ...e.headers };
    // A request whose body was not read (POST, PUT) leaves the connection in an unknown state.
    if (req.method !== 'GET' && req.method !== 'HEAD') headers.Connection = 'close';
    const reason = `${e.status} ${STATUS_TEXT[e.status] ?? 'Error'}: ${e.message}\n`;
    sendBody(res, e.status, 'text/plain; charset=utf-8', reason, headers);
  }

  function sendJson(res: ServerResponse, value: unknown): void {
    sendBody(res, 200, 'application/json; charset=utf-8', JSON.stringify(value), {
      'Cache-Control': 'no-store',
    });
  }

  /** A file as one consistent whole: its length from a stat of the open descriptor, then exactly that many bytes. */
  async function sendFile(
    req: IncomingMessage,
    res: ServerResponse,
    root: string,
    segments: string[],
    headers: Record<string, string>,
  ): Promise<void> {
    const f = await openInside(root, segments);
    try {
      const etag = etagOf(f);
      const base = {
        'Content-Type': contentType(f.path),
        'Cache-Control': 'no-cache',
        ETag: etag,
        'Last-Modified': new Date(f.mtimeMs).toUTCString(),
        'Accept-Ranges': 'none',
        ...headers,
      };
      const inm = req.headers['if-none-match'];
      if (inm?.split(',').some((t) => t.trim() === etag || t.trim() === '*')) {
        res.writeHead(304, { ETag: etag, 'Cache-Control': base['Cache-Control'] });
        res.end();
        return;
      }
      res.writeHead(200, { ...base, 'Content-Length': String(f.size) });
      if (req.method === 'HEAD' || f.size === 0) {
        res.end();
        return;
      }
      const stream = f.handle.createReadStream({ start: 0, end: f.size - 1, autoClose: false });
      await pipeline(stream, res).catch(() => res.destroy());
    } finally {
      await f.handle.close().catch(() => {});
    }
  }

  async function runParam(target: Target, name: string) {
    const id = target.query.get(name);
    if (id === undefined) throw new HttpError(400, `missing ?${name}=RUN`);
    const run = await findRun(rootReal, id);
    if (!run) throw new HttpError(404, `no run or compare folder '${id}' under --runs`);
    return run;
  }

  function releaseWatcher(key: string): void {
    const w = watchers.get(key);
    if (!w) return;
    w.refs--;
    if (w.refs <= 0) {
      w.watcher.stop();
      watchers.delete(key);
    }
  }

  async function openEvents(req: IncomingMessage, res: ServerResponse, target: Target): Promise<void> {
    const run = await runParam(target, 'id');
    if (run.kind !== 'run')
      throw new HttpError(404, `'${run.id}' is a folder of runs: live updates are per run`);
    if (req.method === 'HEAD') {
      res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store' });
      res.end();
      return;
    }
    if (clients.size >= maxEventClients) {
      throw new HttpError(
        503,
        `${maxEventClients} live-update connections are open already; try again later`,
        {
          'Retry-After': '5',
        },
      );
    }
    const key = run.id;
    const client: SseClient = {
      res,
      runKey: key,
      send(event, data) {
        if (!res.writableEnded && !res.destroyed) res.write(`event: ${event}\ndata: ${data}\n\n`);
      },
    };
    clients.add(client);
    let entry = watchers.get(key);
    if (!entry) {
      const watcher = new RunWatcher(runDir(rootReal, key), key, pollMs);
      entry = { watcher, ready: watcher.start(), refs: 0 };
      watchers.set(key, entry);
    }
    entry.refs++;
    const w = entry;
    let closed = false;
    res.on('close', () => {
      closed = true;
      clients.delete(client);
      w.watcher.sinks.delete(client);
      releaseWatcher(key);
    });
    req.socket.setNoDelay(true);
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    res.write('retry: 2000\n\n');
    await w.ready;
    if (closed) return;
    await w.watcher.add(client);
    // The client may have left while the snapshot was being taken.
    if (closed) w.watcher.sinks.delete(client);
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    if (url.length > MAX_URL_LENGTH) throw new HttpError(414, `URL longer than ${MAX_URL_LENGTH} characters`);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      throw new HttpError(405, `${req.method} is not allowed: this server only reads`, {
        Allow: 'GET, HEAD',
      });
    }
    if (loopbackOnly && !isLoopbackHostHeader(req.headers.host)) {
      throw new HttpError(421, 'this server answers only to localhost / 127.0.0.1 / [::1]');
    }
    const target = parseTarget(url);
    const [head, ...rest] = target.segments;
    const page = (p: Page) => {
      if (rest.length > 0) throw new HttpError(404, 'not found');
      sendBody(res, 200, 'text/html; charset=utf-8', pageHtml(p), {
        'Cache-Control': 'no-cache',
        'Content-Security-Policy': PAGE_CSP,
        'X-Frame-Options': 'SAMEORIGIN',
      });
    };
    switch (head) {
      case '':
        if (rest.length > 0) throw new HttpError(404, 'not found');
        return page('index');
      case 'run':
        await runParam(target, 'id');
        return page('run');
      case 'try':
        if (target.query.has('run')) await runParam(target, 'run');
        return page('try');
      case 'train':
        return page('train');
      case 'datasets':
        if (!dataReal) throw new HttpError(404, 'this server offers no datasets (serve --data DIR)');
        return sendFile(req, res, dataReal, rest, { 'Content-Security-Policy': FILE_CSP });
      case 'api': {
        const what = rest.join('/');
        if (what === 'runs') {
          const list: RunList = { root: rootReal, runs: await discoverRuns(rootReal) };
          return sendJson(res, list);
        }
        if (what === 'run') return sendJson(res, await readRunDetail(rootReal, await runParam(target, 'id')));
        if (what === 'events') return openEvents(req, res, target);
        if (what === 'datasets') return sendJson(res, dataReal ? await listDatasets(dataReal) : []);
        if (what === 'dataset') {
          const name = target.query.get('name');
          if (!name) throw new HttpError(400, 'missing ?name=DATASET');
          const pairs = dataReal ? await datasetPairs(dataReal, name) : undefined;
          if (!pairs) throw new HttpError(404, `no dataset '${name}' under --data`);
          return sendJson(res, pairs);
        }
        throw new HttpError(404, `no API /api/${what}`);
      }
      case 'files':
        return sendFile(req, res, rootReal, rest, { 'Content-Security-Policy': FILE_CSP });
      case 'assets':
        if (rest.length === 1 && ASSET_NAME.test(rest[0]!)) return sendFile(req, res, assetsReal, rest, {});
        if (rest.length === 2 && rest[0] === 'wasm' && WASM_NAME.test(rest[1]!)) {
          return sendFile(req, res, wasmReal, [rest[1]!], {});
        }
        throw new HttpError(404, 'no such asset');
      case 'favicon.ico':
        res.writeHead(204, { 'Cache-Control': 'max-age=86400' });
        res.end();
        return;
      default:
        throw new HttpError(404, 'not found');
    }
  }

  const server = createServer(
    { maxHeaderSize: 32 * 1024, requestTimeout: 30_000, headersTimeout: 15_000, keepAliveTimeout: 5_000 },
    (req, res) => {
      setCommon(res);
      route(req, res).catch((e: unknown) => {
        if (e instanceof HttpError) return sendError(req, res, e);
        log.warn(`serve: ${req.method} ${req.url?.slice(0, 200)}: ${(e as Error).message}`);
        sendError(req, res, new HttpError(500, 'internal error'));
      });
    },
  );
  server.maxConnections = 1024;
  // Requests Node's parser rejects before a handler sees them: a request line or headers over
  // maxHeaderSize (414 when the request line alone is that long, 431 otherwise), garbage (400).
  server.on('clientError', (err: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Socket) => {
    if (!socket.writable) return socket.destroy();
    let status = 400;
    if (err.code === 'HPE_HEADER_OVERFLOW') {
      const raw = err.rawPacket;
      const eol = raw ? raw.indexOf('\r\n') : -1;
      status = !raw || eol < 0 || eol > MAX_URL_LENGTH ? 414 : 431;
    } else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      status = 408;
    }
    const body = `${status} ${STATUS_TEXT[status]}\n`;
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_TEXT[status]}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
    );
  });

  const heartbeat = setInterval(() => {
    for (const c of clients) if (!c.res.writableEnded && !c.res.destroyed) c.res.write(': hb\n\n');
  }, heartbeatMs);
  heartbeat.unref();

  await new Promise<void>((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException) => {
      clearInterval(heartbeat);
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
  const address = server.address() as AddressInfo;
  const urlHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${urlHost}:${address.port}/`,
    host: address.address,
    port: address.port,
    server,
    eventClients: () => clients.size,
    close() {
      closing ??= new Promise<void>((resolve) => {
        clearInterval(heartbeat);
        for (const { watcher } of watchers.values()) watcher.stop();
        watchers.clear();
        for (const c of clients) c.res.end();
        clients.clear();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  414: 'URI Too Long',
  421: 'Misdirected Request',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};
