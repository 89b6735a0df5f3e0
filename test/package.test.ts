import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { before, describe, it } from 'node:test';
import { tempDir } from './helpers.js';

// The package as a user gets it: `npm pack` (which builds dist/), then `npm install <tarball>` in an
// empty folder, from npm's cache where it can (the setup's `npm ci` filled it).

const repo = resolve('.');
let root: string;
let app: string;

function sh(cmd: string, args: string[], cwd: string) {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: 300_000 });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

describe('npm package', () => {
  before(async () => {
    root = await tempDir('p2p-pack-');
    sh('npm', ['pack', '--pack-destination', root, '--loglevel=error'], repo);
    const tarball = (await readdir(root)).find((n) => n.endsWith('.tgz'));
    assert.ok(tarball, 'npm pack wrote a tarball');
    app = join(root, 'app');
    await mkdir(app);
    await writeFile(
      join(app, 'package.json'),
      JSON.stringify({ name: 'app', private: true, type: 'module' }),
    );
    sh(
      'npm',
      ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', join(root, tarball)],
      app,
    );
  });

  it('ships compiled JavaScript, no TypeScript sources', async () => {
    const pkg = join(app, 'node_modules', 'pix2pix-ts');
    const top = await readdir(pkg);
    assert.ok(!top.includes('src') && !top.includes('test'), `package root: ${top.join(', ')}`);
    const cli = await readdir(join(pkg, 'dist', 'src', 'cli'));
    assert.ok(cli.includes('main.js') && !cli.some((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')));
  });

  it('npx pix2pix --help works from the installed tarball', () => {
    const help = sh('npx', ['--no-install', 'pix2pix', '--help'], app);
    for (const cmd of ['prepare', 'train', 'eval', 'compare', 'translate', 'export', 'serve']) {
      assert.match(help, new RegExp(`^ {2}${cmd} `, 'm'), `--help lists ${cmd}`);
    }
  });

  it('serve runs from the installed package, with its prebuilt browser bundle and the wasm files', async () => {
    await mkdir(join(app, 'runs'));
    const child = spawn(
      join(app, 'node_modules', '.bin', 'pix2pix'),
      ['serve', '--runs', 'runs', '--port', '0', '--json'],
      {
        cwd: app,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    try {
      const url = await new Promise<string>((done, fail) => {
        let out = '';
        child.stdout.on('data', (d) => {
          out += d;
          const line = out.split('\n').find((l) => l.startsWith('{'));
          if (line) done(JSON.parse(line).url);
        });
        child.on('exit', (code) => fail(new Error(`serve exited with ${code}`)));
      });
      for (const [path, type] of [
        ['/try', 'text/html'],
        ['/assets/try.js', 'javascript'],
        ['/assets/wasm/tfjs-backend-wasm-simd.wasm', 'application/wasm'],
      ] as const) {
        const r = await fetch(new URL(path, url));
        assert.equal(r.status, 200, path);
        assert.match(r.headers.get('content-type') ?? '', new RegExp(type), path);
      }
    } finally {
      child.kill('SIGTERM');
    }
  });

  it('the library imports in plain Node and builds a model', async () => {
    const script = [
      "import { setupBackend, unetGenerator, patchDiscriminator, train, evaluate, translate, exportModel } from 'pix2pix-ts';",
      "await setupBackend('cpu');",
      'const g = unetGenerator({ size: 32 });',
      "const d = patchDiscriminator({ size: 32, kind: 'patch70' });",
      'console.log(JSON.stringify({ g: g.countParams(), d: d.countParams(), fns: [train, evaluate, translate, exportModel].map((f) => typeof f) }));',
    ].join('\n');
    await writeFile(join(app, 'use.mjs'), script);
    const out = JSON.parse(sh(process.execPath, ['use.mjs'], app).trim().split('\n').at(-1)!);
    assert.ok(out.g > 1e6 && out.d > 1e5, JSON.stringify(out));
    assert.deepEqual(out.fns, ['function', 'function', 'function', 'function']);
  });

  it('its TypeScript types resolve through exports (a wrong argument type is an error)', async () => {
    const tsc = join(repo, 'node_modules', 'typescript', 'bin', 'tsc');
    const flags = [
      '--noEmit',
      '--strict',
      '--module',
      'nodenext',
      '--moduleResolution',
      'nodenext',
      '--skipLibCheck',
    ];
    await writeFile(
      join(app, 'good.ts'),
      "import { type TrainConfig, unetGenerator, validateConfig } from 'pix2pix-ts';\nconst n: number = unetGenerator({ size: 64 }).countParams();\nconst c: TrainConfig = validateConfig({ data: 'd', out: 'o' });\nconsole.log(n, c.size);\n",
    );
    await writeFile(
      join(app, 'bad.ts'),
      "import { unetGenerator } from 'pix2pix-ts';\nunetGenerator({ size: '64' });\n",
    );
    // One tsc for both files (each run is ~3 s of CPU): it fails on bad.ts alone, with the type error.
    const r = spawnSync(process.execPath, [tsc, ...flags, 'good.ts', 'bad.ts'], {
      cwd: app,
      encoding: 'utf8',
    });
    assert.notEqual(r.status, 0);
    const errors = r.stdout.split('\n').filter((l) => /error TS\d+/.test(l));
    assert.ok(errors.length > 0, r.stdout);
    for (const e of errors) assert.match(e, /^bad\.ts\(2,\d+\): error TS2322/, r.stdout);
  });
});
