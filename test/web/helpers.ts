import { connect } from 'node:net';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/**
 * Sends one HTTP/1.1 request exactly as written (no client-side normalisation of '..' or
 * percent-encoding) and reads the answer until the server closes the connection.
 */
export function rawRequest(
  url: string,
  target: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<RawResponse> {
  const { hostname, port } = new URL(url);
  const headers: Record<string, string> = {
    Host: `${hostname}:${port}`,
    Connection: 'close',
    ...opts.headers,
  };
  const body = opts.body ?? '';
  if (body) headers['Content-Length'] = String(Buffer.byteLength(body));
  const head = `${opts.method ?? 'GET'} ${target} HTTP/1.1\r\n${Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n`;
  return new Promise((resolve, reject) => {
    const sock = connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    sock.on('data', (c) => chunks.push(c));
    sock.on('error', reject);
    sock.on('end', () => {
      const all = Buffer.concat(chunks);
      const split = all.indexOf('\r\n\r\n');
      if (split < 0) return reject(new Error(`no HTTP answer to ${target.slice(0, 80)}: ${all.toString()}`));
      const lines = all.subarray(0, split).toString('latin1').split('\r\n');
      const status = Number(lines[0]!.split(' ')[1]);
      const hdrs: Record<string, string> = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        hdrs[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      let rest = all.subarray(split + 4);
      if (hdrs['transfer-encoding'] === 'chunked') {
        const parts: Buffer[] = [];
        for (;;) {
          const eol = rest.indexOf('\r\n');
          const n = Number.parseInt(rest.subarray(0, eol).toString(), 16);
          if (!n) break;
          parts.push(rest.subarray(eol + 2, eol + 2 + n));
          rest = rest.subarray(eol + 2 + n + 2);
        }
        rest = Buffer.concat(parts);
      }
      resolve({ status, headers: hdrs, body: rest });
    });
    sock.write(head + body);
  });
}

/** Reads server-sent events from a streaming fetch until `until` says stop (or the timeout). */
export async function readEvents(
  url: string,
  until: (events: { event: string; data: string }[], comments: number) => boolean,
  timeoutMs = 10000,
): Promise<{ events: { event: string; data: string }[]; comments: number; status: number }> {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), timeoutMs);
  const events: { event: string; data: string }[] = [];
  let comments = 0;
  let res: Response;
  try {
    res = await fetch(url, { signal: ctrl.signal });
  } catch (e) {
    clearTimeout(timer);
    throw e;
  }
  if (res.status !== 200 || !res.body) {
    clearTimeout(timer);
    return { events, comments, status: res.status };
  }
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  try {
    while (!until(events, comments)) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let i = buf.indexOf('\n\n');
      while (i >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        i = buf.indexOf('\n\n');
        let event = 'message';
        let data = '';
        let isComment = false;
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) isComment = true;
          else if (line.startsWith('event: ')) event = line.slice(7);
          else if (line.startsWith('data: ')) data += line.slice(6);
        }
        if (isComment) comments++;
        else if (data) events.push({ event, data });
      }
    }
  } catch (e) {
    if (!ctrl.signal.aborted) throw e;
  } finally {
    clearTimeout(timer);
    ctrl.abort();
  }
  return { events, comments, status: res.status };
}
