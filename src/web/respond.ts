// The answers every route shares: the headers on all of them, a body, JSON, and the one-line error
// answers (HttpError from a handler, and what Node's parser rejects before any handler runs).
import { type IncomingMessage, type ServerResponse, STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { type HttpError, MAX_URL_LENGTH } from './paths.js';

/** Headers on every answer. */
const COMMON_HEADERS = {
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

export function setCommonHeaders(res: ServerResponse): void {
  for (const [k, v] of Object.entries(COMMON_HEADERS)) res.setHeader(k, v);
}

export function sendBody(
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

export function sendJson(res: ServerResponse, value: unknown): void {
  sendBody(res, 200, 'application/json; charset=utf-8', JSON.stringify(value), {
    'Cache-Control': 'no-store',
  });
}

/** "404 Not Found": the status line's words, from Node's own table. */
const statusLine = (status: number): string => `${status} ${STATUS_CODES[status] ?? 'Error'}`;

/** `e` as a one-line text answer; a response already under way can only be cut off. */
export function sendError(req: IncomingMessage, res: ServerResponse, e: HttpError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const headers: Record<string, string> = { 'Cache-Control': 'no-store', ...e.headers };
  // A request whose body was not read (POST, PUT) leaves the connection in an unknown state.
  if (req.method !== 'GET' && req.method !== 'HEAD') headers.Connection = 'close';
  sendBody(res, e.status, 'text/plain; charset=utf-8', `${statusLine(e.status)}: ${e.message}\n`, headers);
}

/**
 * The server's 'clientError' listener: requests Node's parser rejects before a handler sees them get
 * a plain answer on the raw socket. A request line or headers over maxHeaderSize are 414 when the
 * request line alone is that long, 431 otherwise; a request that took too long is 408; garbage is 400.
 */
export function answerClientError(err: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Socket): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  let status = 400;
  if (err.code === 'HPE_HEADER_OVERFLOW') {
    const raw = err.rawPacket;
    const eol = raw ? raw.indexOf('\r\n') : -1;
    status = !raw || eol < 0 || eol > MAX_URL_LENGTH ? 414 : 431;
  } else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    status = 408;
  }
  const body = `${statusLine(status)}\n`;
  socket.end(
    `HTTP/1.1 ${statusLine(status)}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
  );
}
