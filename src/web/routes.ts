// Which answer a request gets: the checks every request passes (URL length, method, Host), then one
// handler per first path segment. Handlers are plain functions of the server's state and the request.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../util/log.js';
import { datasetPairs, listDatasets } from './datasets.js';
import { type EventStreams, openEvents } from './events.js';
import { type Page, sendPage } from './pages.js';
import { HttpError, MAX_URL_LENGTH, parseTarget, type Target } from './paths.js';
import { sendError, sendJson, setCommonHeaders } from './respond.js';
import { discoverRuns, findRun, readRunDetail } from './runs.js';
import { ASSET_NAME, FILE_CSP, sendFile, WASM_NAME } from './static.js';
import type { RunList, RunSummary } from './types.js';

/** What the handlers read: the folders (real paths, resolved once at start), the live updates, the log. */
export interface ServerState {
  rootReal: string;
  /** Absent without serve --data. */
  dataReal: string | undefined;
  assetsReal: string;
  wasmReal: string;
  /** Answer only requests whose Host is a loopback name (the server listens on loopback only). */
  loopbackOnly: boolean;
  events: EventStreams;
  /** Gets the faults behind a 500. */
  log: Logger;
}

/** One request, with its parsed URL and the path segments after the first. */
interface Call {
  req: IncomingMessage;
  res: ServerResponse;
  target: Target;
  rest: string[];
}

type Handler = (s: ServerState, c: Call) => void | Promise<void>;

export const isLoopback = (host: string) =>
  host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);

/** A loopback-only server answers only to these names, so a DNS-rebinding page on another name gets 421. */
function isLoopbackHostHeader(host: string | undefined): boolean {
  if (!host) return false;
  return isLoopback(host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d+$/, ''));
}

/** The run or group that the query parameter `name` names. */
async function runParam(s: ServerState, target: Target, name: string): Promise<RunSummary> {
  const id = target.query.get(name);
  if (id === undefined) throw new HttpError(400, `missing ?${name}=RUN`);
  const run = await findRun(s.rootReal, id);
  if (!run) throw new HttpError(404, `no run or compare folder '${id}' under --runs`);
  return run;
}

// ---- pages ----

function showPage(c: Call, page: Page): void {
  if (c.rest.length > 0) throw new HttpError(404, 'not found');
  sendPage(c.res, page);
}

function indexPage(_s: ServerState, c: Call): void {
  showPage(c, 'index');
}

/** A run's dashboard, or a compare folder's comparison: an unknown run is a 404, not an empty page. */
async function runPage(s: ServerState, c: Call): Promise<void> {
  await runParam(s, c.target, 'id');
  showPage(c, 'run');
}

async function tryPage(s: ServerState, c: Call): Promise<void> {
  if (c.target.query.has('run')) await runParam(s, c.target, 'run');
  showPage(c, 'try');
}

function trainPage(_s: ServerState, c: Call): void {
  showPage(c, 'train');
}

// ---- files ----

function runFiles(s: ServerState, c: Call): Promise<void> {
  return sendFile(c.req, c.res, s.rootReal, c.rest, { 'Content-Security-Policy': FILE_CSP });
}

function datasetFiles(s: ServerState, c: Call): Promise<void> {
  if (!s.dataReal) throw new HttpError(404, 'this server offers no datasets (serve --data DIR)');
  return sendFile(c.req, c.res, s.dataReal, c.rest, { 'Content-Security-Policy': FILE_CSP });
}

function assets(s: ServerState, c: Call): Promise<void> {
  const { rest } = c;
  if (rest.length === 1 && ASSET_NAME.test(rest[0]!)) return sendFile(c.req, c.res, s.assetsReal, rest, {});
  if (rest.length === 2 && rest[0] === 'wasm' && WASM_NAME.test(rest[1]!)) {
    return sendFile(c.req, c.res, s.wasmReal, [rest[1]!], {});
  }
  throw new HttpError(404, 'no such asset');
}

function favicon(_s: ServerState, c: Call): void {
  c.res.writeHead(204, { 'Cache-Control': 'max-age=86400' });
  c.res.end();
}

// ---- the API (JSON, and the event stream) ----

async function apiRuns(s: ServerState, c: Call): Promise<void> {
  const list: RunList = { root: s.rootReal, runs: await discoverRuns(s.rootReal) };
  sendJson(c.res, list);
}

async function apiRun(s: ServerState, c: Call): Promise<void> {
  sendJson(c.res, await readRunDetail(s.rootReal, await runParam(s, c.target, 'id')));
}

async function apiEvents(s: ServerState, c: Call): Promise<void> {
  await openEvents(s.events, c.req, c.res, await runParam(s, c.target, 'id'));
}

async function apiDatasets(s: ServerState, c: Call): Promise<void> {
  sendJson(c.res, s.dataReal ? await listDatasets(s.dataReal) : []);
}

async function apiDataset(s: ServerState, c: Call): Promise<void> {
  const name = c.target.query.get('name');
  if (!name) throw new HttpError(400, 'missing ?name=DATASET');
  const pairs = s.dataReal ? await datasetPairs(s.dataReal, name) : undefined;
  if (!pairs) throw new HttpError(404, `no dataset '${name}' under --data`);
  sendJson(c.res, pairs);
}

// Maps, not object literals: a path segment such as `constructor` must not find Object.prototype's.
const API = new Map<string, Handler>([
  ['runs', apiRuns],
  ['run', apiRun],
  ['events', apiEvents],
  ['datasets', apiDatasets],
  ['dataset', apiDataset],
]);

function api(s: ServerState, c: Call): void | Promise<void> {
  const what = c.rest.join('/');
  const handler = API.get(what);
  if (!handler) throw new HttpError(404, `no API /api/${what}`);
  return handler(s, c);
}

/** By the URL's first segment ('' is `/`). */
const ROUTES = new Map<string, Handler>([
  ['', indexPage],
  ['run', runPage],
  ['try', tryPage],
  ['train', trainPage],
  ['datasets', datasetFiles],
  ['api', api],
  ['files', runFiles],
  ['assets', assets],
  ['favicon.ico', favicon],
]);

async function route(s: ServerState, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = req.url ?? '/';
  if (url.length > MAX_URL_LENGTH) throw new HttpError(414, `URL longer than ${MAX_URL_LENGTH} characters`);
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    throw new HttpError(405, `${req.method} is not allowed: this server only reads`, { Allow: 'GET, HEAD' });
  }
  if (s.loopbackOnly && !isLoopbackHostHeader(req.headers.host)) {
    throw new HttpError(421, 'this server answers only to localhost / 127.0.0.1 / [::1]');
  }
  const target = parseTarget(url);
  const [head, ...rest] = target.segments;
  const handler = head === undefined ? undefined : ROUTES.get(head);
  if (!handler) throw new HttpError(404, 'not found');
  await handler(s, { req, res, target, rest });
}

/** The server's request listener: an HttpError is its one-line answer; anything else is logged and a 500. */
export function handleRequest(s: ServerState, req: IncomingMessage, res: ServerResponse): void {
  setCommonHeaders(res);
  route(s, req, res).catch((e: unknown) => {
    if (e instanceof HttpError) return sendError(req, res, e);
    s.log.warn(`serve: ${req.method} ${req.url?.slice(0, 200)}: ${(e as Error).message}`);
    sendError(req, res, new HttpError(500, 'internal error'));
  });
}
