// The browser bundle of `serve`: src/web/client/*.ts bundled by esbuild into dist/web (dashboard.js,
// try.js, style.css). `npm run build:web` writes it; in a checkout `serve` rebuilds it when it is
// missing or older than any file it was built from, so a fresh clone needs no separate step. The npm
// package ships dist/web prebuilt (and no src/), and then it is used as it is.
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { join, relative } from 'node:path';
import { type Logger, silentLogger, UserError } from '../util/log.js';
import { packageRoot, packageVersion } from '../util/package-root.js';

/** Entry points, relative to src/web/client, and the files they become in the output folder. */
const ENTRIES = {
  dashboard: 'dashboard.ts',
  try: 'try.ts',
  train: 'train.ts',
  'train-worker': 'train-worker.ts',
  style: 'style.css',
} as const;

/** Files of a complete bundle. */
export const BUNDLE_FILES = ['dashboard.js', 'try.js', 'train.js', 'train-worker.js', 'style.css'];

/** What build.json records: the inputs (relative to the package root) and when they were bundled. */
interface BuildRecord {
  time: number;
  esbuild: string;
  inputs: string[];
}

/**
 * Modules the browser cannot load. The client imports project code that Node shares with it
 * (src/infer/tiling.ts: the translation of any image size; src/models/instance-norm.ts; the WASM
 * kernels of src/backend/wasm.ts), which must stay free of these: an import of one from project
 * source fails the build with the chain to fix, rather than a bundle that breaks in the browser.
 */
const NODE_ONLY = new Set([...builtinModules, 'sharp', 'onnxruntime-node', 'commander', 'protobufjs']);

/**
 * The esbuild plugin that fails a browser bundle when project source imports a module of NODE_ONLY,
 * naming the importing file; tests bundle other browser entries (src/data/in-memory.ts) with it too.
 */
export function noNodeInTheBrowser(root: string): import('esbuild').Plugin {
  return {
    name: 'no-node-in-the-browser',
    setup(b) {
      b.onResolve({ filter: /.*/ }, (a) => {
        const name = a.path.startsWith('node:') ? a.path.slice(5) : a.path.split('/')[0]!;
        const fromProject = !a.importer.includes('node_modules');
        if (!fromProject || !(a.path.startsWith('node:') || NODE_ONLY.has(name))) return undefined;
        return {
          errors: [
            {
              text: `${relative(root, a.importer)} imports ${a.path}, which a browser cannot load: the web client must import only modules free of Node APIs (as src/infer/tiling.ts is)`,
            },
          ],
        };
      });
    },
  };
}

export interface BuildResult {
  dir: string;
  files: { name: string; bytes: number }[];
  seconds: number;
}

/** Bundles the client into `outDir` (default dist/web): minified ES2020 modules with source maps. */
export async function buildWebBundle(opts: { outDir?: string; log?: Logger } = {}): Promise<BuildResult> {
  const root = packageRoot();
  const clientDir = join(root, 'src', 'web', 'client');
  const outDir = opts.outDir ?? join(root, 'dist', 'web');
  if (!existsSync(clientDir)) throw new UserError(`${clientDir} is missing: cannot build the web bundle`);
  let esbuild: typeof import('esbuild');
  try {
    esbuild = await import('esbuild');
  } catch (e) {
    throw new UserError(
      `cannot build the web bundle: esbuild is not installed (${(e as Error).message.split('\n')[0]}); run npm install`,
    );
  }
  const t0 = performance.now();
  // Sources are read after this moment: one changed later makes the bundle stale (staleReason).
  const started = Date.now();
  const result = await esbuild.build({
    absWorkingDir: root,
    entryPoints: Object.entries(ENTRIES).map(([out, src]) => ({ in: join(clientDir, src), out })),
    outdir: outDir,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2020',
    minify: true,
    sourcemap: 'linked',
    sourcesContent: false,
    metafile: true,
    write: false,
    logLevel: 'silent',
    legalComments: 'linked',
    // The pages' exports record which pix2pix-ts made them, as `pix2pix export` does.
    define: {
      'process.env.NODE_ENV': '"production"',
      'process.env.PIX2PIX_VERSION': JSON.stringify(packageVersion()),
    },
    plugins: [noNodeInTheBrowser(root)],
  });
  for (const w of result.warnings) opts.log?.warn(`esbuild: ${w.text}`);
  await mkdir(outDir, { recursive: true });
  // Each file written under a temporary name and renamed: a server reading the folder meanwhile
  // never sees a half-written file.
  const files: BuildResult['files'] = [];
  for (const f of result.outputFiles) {
    const tmp = `${f.path}.${process.pid}.tmp`;
    await writeFile(tmp, f.contents);
    await rename(tmp, f.path);
    files.push({ name: relative(outDir, f.path), bytes: f.contents.length });
  }
  const record: BuildRecord = {
    time: started,
    esbuild: esbuild.version,
    inputs: Object.keys(result.metafile.inputs)
      // Plain files only: not stubs, nor esbuild's '(disabled):...' entries for a package's browser: false.
      .filter((p) => !/^[^/]*:/.test(p))
      .sort(),
  };
  const tmp = join(outDir, `build.json.${process.pid}.tmp`);
  await writeFile(tmp, `${JSON.stringify(record, null, 1)}\n`);
  await rename(tmp, join(outDir, 'build.json'));
  return { dir: outDir, files, seconds: (performance.now() - t0) / 1000 };
}

/** Why the bundle in `outDir` must be rebuilt, or undefined when it is up to date. */
export async function staleReason(outDir: string, root = packageRoot()): Promise<string | undefined> {
  let record: BuildRecord;
  try {
    record = JSON.parse(await readFile(join(outDir, 'build.json'), 'utf8'));
  } catch {
    return 'not built yet';
  }
  for (const f of BUNDLE_FILES) if (!existsSync(join(outDir, f))) return `${f} is missing`;
  const clientDir = join(root, 'src', 'web', 'client');
  const inputs = new Set(record.inputs);
  for (const src of Object.values(ENTRIES)) inputs.add(relative(root, join(clientDir, src)));
  for (const rel of inputs) {
    const st = await stat(join(root, rel)).catch(() => undefined);
    if (!st) return `${rel} is gone`;
    if (st.mtimeMs > record.time) return `${rel} changed`;
  }
  return undefined;
}

let building: Promise<string> | undefined;

/**
 * The folder of an up-to-date bundle. In a checkout (src/web/client present) it is rebuilt into
 * dist/web when missing or stale; an installed package uses its prebuilt dist/web.
 */
export function ensureWebBundle(opts: { log?: Logger } = {}): Promise<string> {
  building ??= (async () => {
    const log = opts.log ?? silentLogger;
    const root = packageRoot();
    const outDir = join(root, 'dist', 'web');
    if (existsSync(join(root, 'src', 'web', 'client'))) {
      const why = await staleReason(outDir, root);
      if (why) {
        log.info(`building the web bundle (${why})`);
        try {
          const r = await buildWebBundle({ outDir, log });
          log.info(`web bundle built in ${r.seconds.toFixed(1)} s`);
        } catch (e) {
          // An older bundle still serves (esbuild missing, say); none at all cannot.
          if (!BUNDLE_FILES.every((f) => existsSync(join(outDir, f)))) throw e;
          log.warn(`using the existing web bundle in ${outDir}: ${(e as Error).message.split('\n')[0]}`);
        }
      }
    } else {
      for (const f of BUNDLE_FILES) {
        if (!existsSync(join(outDir, f))) {
          throw new UserError(`${join(outDir, f)} is missing: this installation has no web bundle`);
        }
      }
    }
    return outDir;
  })().finally(() => {
    building = undefined;
  });
  return building;
}
