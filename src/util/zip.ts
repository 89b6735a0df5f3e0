// A minimal ZIP writer with no Node import, so the browser's train page can hand over a whole run
// folder as one download. Entries are STOREd (weights do not compress), names are UTF-8, and a
// symlink is stored the way Info-ZIP's `zip -y` stores one, which `unzip` restores as a link.

/** A file's path (relative, '/'-separated) and bytes, as the Node-free writers hand them out. */
export interface FileBytes {
  path: string;
  data: Uint8Array;
}

export interface ZipEntry {
  /** Path inside the archive, '/'-separated, relative (no leading '/', no '..'). */
  path: string;
  data?: Uint8Array;
  /**
   * Makes the entry a symbolic link to this target. Info-ZIP `unzip` restores a link; extractors that
   * ignore unix modes (Python's zipfile, Windows) write a small file holding the target's name.
   */
  symlinkTo?: string;
}

export interface ZipOptions {
  /** Modification time of every entry (default now); ZIP stores it in local time, to 2 s. */
  date?: Date;
}

/** The ZIP format's own limit without Zip64, on sizes, offsets and the archive's size. */
const MAX_BYTES = 0xffffffff;
const MAX_ENTRIES = 0xffff;
/** "version made by": unix (3) in the high byte, so readers honour the unix mode in the attributes. */
const MADE_BY_UNIX = (3 << 8) | 20;
const VERSION_NEEDED = 20;
/** General purpose flag bit 11: the name is UTF-8. */
const FLAG_UTF8 = 1 << 11;
const MODE_FILE = 0o100644;
const MODE_SYMLINK = 0o120777;

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (ISO 3309, the one ZIP and PNG use) of `data`. */
export function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** MS-DOS time and date fields (local time, 2 s resolution, years 1980-2107). */
function dosDateTime(d: Date): { time: number; date: number } {
  const year = Math.min(Math.max(d.getFullYear(), 1980), 2107);
  return {
    time: (d.getHours() << 11) | (d.getMinutes() << 5) | Math.floor(d.getSeconds() / 2),
    date: ((year - 1980) << 9) | ((d.getMonth() + 1) << 5) | d.getDate(),
  };
}

function checkPath(path: string): void {
  const parts = path.split('/');
  if (
    path === '' ||
    path.startsWith('/') ||
    path.includes('\\') ||
    parts.some((p) => p === '..' || p === '')
  ) {
    throw new Error(`zip: entry name '${path}' must be a relative '/'-separated path without '..'`);
  }
}

/**
 * The archive as a list of byte chunks (headers, and each entry's own data uncopied), for
 * `new Blob(parts)` where a single array of a whole run would double its memory.
 */
export function zipParts(entries: ZipEntry[], opts: ZipOptions = {}): Uint8Array[] {
  if (entries.length > MAX_ENTRIES) {
    throw new Error(
      `zip: ${entries.length} entries are more than the ${MAX_ENTRIES} a zip without Zip64 holds`,
    );
  }
  const { time, date } = dosDateTime(opts.date ?? new Date());
  const utf8 = new TextEncoder();
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  const seen = new Set<string>();
  let offset = 0;
  for (const e of entries) {
    checkPath(e.path);
    if (seen.has(e.path)) throw new Error(`zip: entry '${e.path}' is given twice`);
    seen.add(e.path);
    if (e.symlinkTo !== undefined && e.data !== undefined) {
      throw new Error(`zip: entry '${e.path}' has both data and a link target`);
    }
    const link = e.symlinkTo !== undefined;
    const data = link ? utf8.encode(e.symlinkTo) : (e.data ?? new Uint8Array(0));
    const name = utf8.encode(e.path);
    if (data.byteLength > MAX_BYTES || offset > MAX_BYTES) {
      throw new Error(
        `zip: '${e.path}' would end past 4 GiB, the limit of a zip without Zip64 (${data.byteLength} bytes at offset ${offset})`,
      );
    }
    const crc = crc32(data);
    const local = new Uint8Array(30 + name.byteLength);
    const l = new DataView(local.buffer);
    l.setUint32(0, 0x04034b50, true);
    l.setUint16(4, VERSION_NEEDED, true);
    l.setUint16(6, FLAG_UTF8, true);
    l.setUint16(8, 0, true); // method: stored
    l.setUint16(10, time, true);
    l.setUint16(12, date, true);
    l.setUint32(14, crc, true);
    l.setUint32(18, data.byteLength, true);
    l.setUint32(22, data.byteLength, true);
    l.setUint16(26, name.byteLength, true);
    l.setUint16(28, 0, true);
    local.set(name, 30);
    const dir = new Uint8Array(46 + name.byteLength);
    const c = new DataView(dir.buffer);
    c.setUint32(0, 0x02014b50, true);
    c.setUint16(4, MADE_BY_UNIX, true);
    c.setUint16(6, VERSION_NEEDED, true);
    c.setUint16(8, FLAG_UTF8, true);
    c.setUint16(10, 0, true);
    c.setUint16(12, time, true);
    c.setUint16(14, date, true);
    c.setUint32(16, crc, true);
    c.setUint32(20, data.byteLength, true);
    c.setUint32(24, data.byteLength, true);
    c.setUint16(28, name.byteLength, true);
    // extra length, comment length, disk number, internal attributes: 0
    c.setUint32(38, ((link ? MODE_SYMLINK : MODE_FILE) << 16) >>> 0, true);
    c.setUint32(42, offset, true);
    dir.set(name, 46);
    parts.push(local, data);
    central.push(dir);
    offset += local.byteLength + data.byteLength;
  }
  const dirBytes = central.reduce((n, d) => n + d.byteLength, 0);
  if (offset + dirBytes + 22 > MAX_BYTES) {
    throw new Error(
      `zip: the archive would be ${offset + dirBytes + 22} bytes, over the 4 GiB of a zip without Zip64`,
    );
  }
  const end = new Uint8Array(22);
  const v = new DataView(end.buffer);
  v.setUint32(0, 0x06054b50, true);
  v.setUint16(8, entries.length, true);
  v.setUint16(10, entries.length, true);
  v.setUint32(12, dirBytes, true);
  v.setUint32(16, offset, true);
  return [...parts, ...central, end];
}

/** A ZIP archive of `entries`, in their order (see ZipEntry for links). */
export function zip(entries: ZipEntry[], opts: ZipOptions = {}): Uint8Array {
  return concatBytes(zipParts(entries, opts));
}

/** The parts one after another in one new array. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.byteLength;
  }
  return out;
}
