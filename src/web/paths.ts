// Request targets to safe paths: what `serve` accepts of a URL, and the checks that keep every file it
// opens inside --runs (or its own assets), whatever the URL, the symlinks or a concurrent writer do.
import { constants } from 'node:fs';
import { type FileHandle, open, readlink, realpath } from 'node:fs/promises';
import { isAbsolute, join, relative, sep } from 'node:path';
import { CHECKPOINTS_DIR, LATEST, parseCheckpointName } from '../run/layout.js';

/** A request answered with a 4xx/5xx status and a one-line reason. */
export class HttpError extends Error {
  override name = 'HttpError';
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** Longest request target accepted (414 above). Browsers' own limits are far larger; our URLs are short. */
export const MAX_URL_LENGTH = 2048;

export interface Target {
  /** The decoded path segments after the leading '/' (a trailing '/' gives a last '' segment). */
  segments: string[];
  query: Map<string, string>;
}

/** decodeURIComponent that answers 400 instead of throwing a URIError. */
function decode(text: string, what: string): string {
  let out: string;
  try {
    out = decodeURIComponent(text);
  } catch {
    throw new HttpError(400, `malformed percent-encoding in the ${what}`);
  }
  if (out.includes('\0')) throw new HttpError(400, `NUL byte in the ${what}`);
  return out;
}

/**
 * Splits and decodes a request target (origin-form only: '/path?query'). Nothing is normalised: a
 * '..' stays a segment of its own, for `safeSegments` to refuse.
 */
export function parseTarget(url: string): Target {
  if (url.length > MAX_URL_LENGTH) throw new HttpError(414, `URL longer than ${MAX_URL_LENGTH} characters`);
  if (!url.startsWith('/')) throw new HttpError(400, 'the request target must be a path starting with /');
  const q = url.indexOf('?');
  const rawPath = q < 0 ? url : url.slice(0, q);
  const rawQuery = q < 0 ? '' : url.slice(q + 1);
  if (rawPath.includes('\\')) throw new HttpError(400, 'backslash in the path');
  const segments = rawPath
    .slice(1)
    .split('/')
    .map((s) => decode(s, 'path'));
  const query = new Map<string, string>();
  for (const part of rawQuery.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const key = decode((eq < 0 ? part : part.slice(0, eq)).replace(/\+/g, ' '), 'query');
    const value = decode((eq < 0 ? '' : part.slice(eq + 1)).replace(/\+/g, ' '), 'query');
    if (!query.has(key)) query.set(key, value);
  }
  return { segments, query };
}

/**
 * Checks decoded path segments that name something below a root: 403 for anything that could leave it
 * ('..', '.', empty segments as in '//' or a leading '/', separators smuggled in by percent-encoding,
 * absolute paths); 404 for what is never served (hidden names such as `.epoch-0003.tmp`, `*.tmp`
 * files being written, and any folder under checkpoints/ other than a named checkpoint or `latest`).
 */
export function safeSegments(segments: string[]): string[] {
  for (const s of segments) {
    if (s === '' || s === '.' || s === '..' || s.includes('/') || s.includes('\\') || isAbsolute(s)) {
      throw new HttpError(403, 'the path leaves the served folder');
    }
  }
  checkServable(segments);
  return segments;
}

/** The 404 rules of `safeSegments`, also applied to the path a file resolves to. */
function checkServable(segments: string[]): void {
  for (const [i, s] of segments.entries()) {
    if (s.startsWith('.') || s.endsWith('.tmp')) throw new HttpError(404, 'not found');
    if (s === CHECKPOINTS_DIR && i + 2 < segments.length) {
      // Only whole checkpoints: a name parseCheckpointName knows, never a `.NAME.tmp` being written.
      const name = segments[i + 1]!;
      if (name !== LATEST && !parseCheckpointName(name)) throw new HttpError(404, 'not found');
    }
  }
}

/** `path` is `root` or below it (both real paths). */
export const isInside = (root: string, path: string): boolean =>
  path === root || path.startsWith(root.endsWith(sep) ? root : root + sep);

/**
 * Opens a regular file below `rootReal` (a real path) for reading: the symlinks on the way are
 * resolved and the result must stay inside the root (403 otherwise) and obey the 404 rules of
 * `safeSegments`; the last component is opened without following links, and on Linux the opened
 * descriptor's own path is checked again, so a link swapped in between cannot leak a file either.
 */
export async function openInside(
  rootReal: string,
  segments: string[],
): Promise<{ handle: FileHandle; size: number; mtimeMs: number; ino: number; path: string }> {
  safeSegments(segments);
  let real: string;
  try {
    real = await realpath(join(rootReal, ...segments));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw new HttpError(403, 'symlink loop');
    throw new HttpError(404, 'not found');
  }
  if (!isInside(rootReal, real)) throw new HttpError(403, 'the path leads outside the served folder');
  const rel = relative(rootReal, real);
  if (rel) checkServable(rel.split(sep));
  let handle: FileHandle;
  try {
    handle = await open(real, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw new HttpError(403, 'the path leads outside the served folder');
    throw new HttpError(404, 'not found');
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new HttpError(404, 'not found');
    if (process.platform === 'linux') {
      const opened = await readlink(`/proc/self/fd/${handle.fd}`).catch(() => undefined);
      if (opened !== undefined && !isInside(rootReal, opened)) {
        throw new HttpError(403, 'the path leads outside the served folder');
      }
    }
    return { handle, size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, path: real };
  } catch (e) {
    await handle.close();
    throw e;
  }
}
