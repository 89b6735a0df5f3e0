// GET /api/events?id=RUN: one run's live updates as server-sent events (the events are listed in
// types.ts). The registry bounds the connections open at once and keeps each one alive with heartbeats;
// the run's files are polled by a shared RunWatcher (watchers.ts), which sends each client its events.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpError } from './paths.js';
import type { EventSink } from './runs.js';
import type { EventName, RunSummary } from './types.js';
import { RunWatchers } from './watchers.js';

/** One SSE response. */
class SseClient implements EventSink {
  constructor(readonly res: ServerResponse) {}

  /** False once the client left or the server ended the stream: writes would throw or go nowhere. */
  private get open(): boolean {
    return !this.res.writableEnded && !this.res.destroyed;
  }

  send(event: EventName, data: string): void {
    if (this.open) this.res.write(`event: ${event}\ndata: ${data}\n\n`);
  }

  /** A comment line: keeps proxies and the browser from timing out an idle stream. */
  heartbeat(): void {
    if (this.open) this.res.write(': hb\n\n');
  }
}

export interface EventStreamOptions {
  /** The --runs folder (real path). */
  rootReal: string;
  /** Connections open at once; more get 503. */
  maxClients: number;
  heartbeatMs: number;
  /** How often a followed run's files are polled. */
  pollMs: number;
}

/** The open live-update connections and the watchers feeding them. */
export class EventStreams {
  readonly clients = new Set<SseClient>();
  readonly watchers: RunWatchers;
  readonly maxClients: number;
  private readonly timer: NodeJS.Timeout;

  constructor(o: EventStreamOptions) {
    this.watchers = new RunWatchers(o.rootReal, o.pollMs);
    this.maxClients = o.maxClients;
    this.timer = setInterval(() => {
      for (const c of this.clients) c.heartbeat();
    }, o.heartbeatMs);
    this.timer.unref();
  }

  /** Ends every stream and stops every watcher and the heartbeat. */
  close(): void {
    clearInterval(this.timer);
    this.watchers.stopAll();
    for (const c of this.clients) c.res.end();
    this.clients.clear();
  }
}

/**
 * Opens `run`'s event stream on `res`: the stream's retry delay at once, then (after the watcher's
 * first poll) the run's whole state, then what changes, until the client leaves or the server closes.
 */
export async function openEvents(
  streams: EventStreams,
  req: IncomingMessage,
  res: ServerResponse,
  run: RunSummary,
): Promise<void> {
  if (run.kind !== 'run')
    throw new HttpError(404, `'${run.id}' is a folder of runs: live updates are per run`);
  if (req.method === 'HEAD') {
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store' });
    res.end();
    return;
  }
  if (streams.clients.size >= streams.maxClients) {
    throw new HttpError(
      503,
      `${streams.maxClients} live-update connections are open already; try again later`,
      {
        'Retry-After': '5',
      },
    );
  }
  const client = new SseClient(res);
  streams.clients.add(client);
  const { watcher, ready } = streams.watchers.acquire(run.id);
  let closed = false;
  res.on('close', () => {
    closed = true;
    streams.clients.delete(client);
    watcher.sinks.delete(client);
    streams.watchers.release(run.id);
  });
  req.socket.setNoDelay(true);
  res.writeHead(200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-store',
    Connection: 'keep-alive',
    'X-Accel-Buffering': 'no',
  });
  res.write('retry: 2000\n\n');
  await ready;
  if (closed) return;
  await watcher.add(client);
  // The client may have left while the snapshot was being taken.
  if (closed) watcher.sinks.delete(client);
}
