// Files answered from disk (the bundle, tfjs's .wasm binaries, run files, datasets): each from one open
// descriptor, with an ETag for revalidation. paths.ts decides which files may be opened at all.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, extname } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { openInside } from './paths.js';

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

/**
 * Run files (report.html, SVG plots) open in a sandbox: shown, but no script in them runs and they
 * cannot act as this origin, whatever a folder under --runs holds.
 */
export const FILE_CSP = "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'";

/** The bundle's files (dist/web) and tfjs-backend-wasm's binaries: the only names /assets/ serves. */
export const ASSET_NAME = /^(dashboard|try|train|train-worker|style)\.(js|css)(\.map|\.LEGAL\.txt)?$/;
export const WASM_NAME = /^tfjs-backend-wasm(-simd|-threaded-simd)?\.wasm$/;

/** The folder holding tfjs-backend-wasm's .wasm binaries. */
export function wasmDir(): string {
  const require = createRequire(import.meta.url);
  return dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
}

/** Changes with the file's identity, length or time, so a file train replaced is never revalidated as fresh. */
const etagOf = (st: { ino: number; size: number; mtimeMs: number }) =>
  `"${st.ino.toString(36)}-${st.size.toString(36)}-${Math.round(st.mtimeMs).toString(36)}"`;

/** A file as one consistent whole: its length from a stat of the open descriptor, then exactly that many bytes. */
export async function sendFile(
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
