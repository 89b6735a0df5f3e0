import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { appendFile, mkdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { lockRun } from '../../src/run/lock.js';
import { buildWebBundle, staleReason } from '../../src/web/build.js';
import { type ServeHandle, serve } from '../../src/web/server.js';
import type { RunDetail, RunList, RunState } from '../../src/web/types.js';
import { CLI, tempDir } from '../helpers.js';
import { rawRequest, readEvents } from './helpers.js';

const metricsLine = (step: number) =>
  `${JSON.stringify({ epoch: 1, step, g_gan: 0.7, g_l1: 0.3 - step / 100, d_loss: 0.69, images_per_s: 10, lr: 2e-4 })}\n`;

/** A fake run folder: the files train writes, with stand-in contents (no model is loaded here). */
async function fakeRun(dir: string, opts: { epochs?: number } = {}): Promise<void> {
  const epochs = opts.epochs ?? 1;
  await mkdir(join(dir, 'samples'), { recursive: true });
  await writeFile(
    join(dir, 'config.json'),
    JSON.stringify({ config: { size: 32, epochs: 3, epochsDecay: 0 } }),
  );
  await writeFile(join(dir, 'metrics.jsonl'), metricsLine(1) + metricsLine(2));
  await writeFile(
    join(dir, 'eval.csv'),
    'epoch,step,psnr,ssim,mae,seconds\n1,2,20.5000,0.600000,12.0000,0.10\n',
  );
  for (let e = 1; e <= epochs; e++) {
    const ck = join(dir, 'checkpoints', `epoch-000${e}`);
    await mkdir(join(ck, 'generator'), { recursive: true });
    await writeFile(
      join(ck, 'meta.json'),
      JSON.stringify({ epoch: e, step: 2 * e, time: new Date().toISOString() }),
    );
    await writeFile(
      join(ck, 'generator', 'model.json'),
      JSON.stringify({ format: 'layers-model', epoch: e }),
    );
    await writeFile(join(ck, 'generator', 'weights.bin'), Buffer.alloc(1000, e));
    await writeFile(join(dir, 'samples', `epoch-000${e}.png`), Buffer.from('\x89PNG\r\n\x1a\nfake'));
  }
  await symlink(`epoch-000${epochs}`, join(dir, 'checkpoints', 'latest'));
}

describe('serve: HTTP server', () => {
  let root: string;
  let runs: string;
  let outside: string;
  let srv: ServeHandle;
  let base: string;

  before(async () => {
    root = await tempDir('p2p-serve-');
    runs = join(root, 'runs');
    outside = join(root, 'outside');
    await mkdir(outside, { recursive: true });
    await writeFile(join(outside, 'secret.txt'), 'TOP SECRET');
    await writeFile(join(outside, 'config.json'), '{}');
    await fakeRun(join(runs, 'alpha'));
    await fakeRun(join(runs, 'cmp', 'a'));
    await fakeRun(join(runs, 'cmp', 'b'));
    await writeFile(join(runs, 'cmp', 'report.html'), '<!doctype html><title>report</title><h1>report</h1>');
    await fakeRun(join(runs, '.hidden'));
    // A checkpoint being written (never served) and a model file being replaced.
    const tmpCk = join(runs, 'alpha', 'checkpoints', '.epoch-0002.tmp', 'generator');
    await mkdir(tmpCk, { recursive: true });
    await writeFile(join(tmpCk, 'model.json'), '{"half":');
    await writeFile(join(runs, 'alpha', 'checkpoints', 'epoch-0001', 'generator', 'model.json.tmp'), '{"ha');
    // Links out of --runs (refused) and one within (allowed).
    await symlink(outside, join(runs, 'alpha', 'evil-dir'));
    await symlink(join(outside, 'secret.txt'), join(runs, 'alpha', 'evil-file.txt'));
    await symlink(outside, join(runs, 'escape'));
    await symlink('../cmp/report.html', join(runs, 'alpha', 'report-link.html'));
    srv = await serve({ runs, port: 0, maxEventClients: 3, heartbeatMs: 100, pollMs: 50 });
    base = srv.url;
  });

  after(async () => {
    await srv?.close();
  });

  it('serves the pages, the API and run files with their content types; HEAD gives the same headers', async () => {
    const index = await rawRequest(base, '/');
    assert.equal(index.status, 200);
    assert.match(index.headers['content-type']!, /^text\/html; charset=utf-8/);
    assert.match(index.headers['content-security-policy']!, /script-src 'self' 'wasm-unsafe-eval'/);
    assert.equal(index.headers['x-content-type-options'], 'nosniff');
    const head = await rawRequest(base, '/', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], index.headers['content-length']);
    assert.equal(head.body.length, 0);
    const types: [string, RegExp][] = [
      ['/assets/dashboard.js', /^text\/javascript/],
      ['/assets/try.js', /^text\/javascript/],
      ['/assets/style.css', /^text\/css/],
      ['/assets/wasm/tfjs-backend-wasm-simd.wasm', /^application\/wasm$/],
      ['/assets/wasm/tfjs-backend-wasm.wasm', /^application\/wasm$/],
      ['/files/alpha/config.json', /^application\/json/],
      ['/files/alpha/samples/epoch-0001.png', /^image\/png$/],
      ['/files/alpha/eval.csv', /^text\/csv/],
      ['/files/alpha/checkpoints/epoch-0001/generator/weights.bin', /^application\/octet-stream$/],
      ['/files/alpha/checkpoints/latest/generator/model.json', /^application\/json/],
      ['/files/alpha/report-link.html', /^text\/html/],
    ];
    for (const [path, type] of types) {
      const r = await rawRequest(base, path);
      assert.equal(r.status, 200, path);
      assert.match(r.headers['content-type']!, type, path);
      assert.equal(Number(r.headers['content-length']), r.body.length, path);
      assert.equal(r.headers['cache-control'], 'no-cache', path);
      const h = await rawRequest(base, path, { method: 'HEAD' });
      assert.equal(h.status, 200);
      assert.equal(h.headers['content-length'], r.headers['content-length']);
      assert.equal(h.body.length, 0);
    }
    const wasm = await rawRequest(base, '/assets/wasm/tfjs-backend-wasm-simd.wasm');
    assert.deepEqual([...wasm.body.subarray(0, 4)], [0, 0x61, 0x73, 0x6d]); // \0asm
    // Run files are sandboxed (a report.html under --runs cannot script this origin).
    assert.match(
      (await rawRequest(base, '/files/cmp/report.html')).headers['content-security-policy']!,
      /sandbox/,
    );
    // Revalidation
    const etag = (await rawRequest(base, '/files/alpha/config.json')).headers.etag!;
    const again = await rawRequest(base, '/files/alpha/config.json', { headers: { 'If-None-Match': etag } });
    assert.equal(again.status, 304);
    assert.equal((await rawRequest(base, '/api/runs')).headers['cache-control'], 'no-store');
  });

  it('lists runs and compare folders (one level down), not hidden folders or links out of --runs', async () => {
    const list = JSON.parse((await rawRequest(base, '/api/runs')).body.toString()) as RunList;
    assert.deepEqual(
      list.runs.map((r) => `${r.kind}:${r.id}`),
      ['run:alpha', 'group:cmp', 'run:cmp/a', 'run:cmp/b'],
    );
    const cmp = list.runs.find((r) => r.id === 'cmp')!;
    assert.equal(cmp.report, true);
    assert.deepEqual(cmp.children, ['cmp/a', 'cmp/b']);
    const alpha = list.runs.find((r) => r.id === 'alpha')!;
    assert.equal(alpha.epoch, 1);
    assert.equal(alpha.totalEpochs, 3);
    assert.equal(alpha.best?.psnr, 20.5);
    const detail = JSON.parse((await rawRequest(base, '/api/run?id=alpha')).body.toString()) as RunDetail;
    assert.deepEqual(
      detail.checkpoints.map((c) => [c.name, c.latest, c.model]),
      [['epoch-0001', true, '/files/alpha/checkpoints/epoch-0001/generator/model.json']],
    );
    assert.equal(detail.samples.length, 1);
    const group = JSON.parse((await rawRequest(base, '/api/run?id=cmp')).body.toString()) as RunDetail;
    assert.equal(group.reportUrl, '/files/cmp/report.html');
    assert.deepEqual(
      group.runs?.map((r) => [r.id, r.eval.length]),
      [
        ['cmp/a', 1],
        ['cmp/b', 1],
      ],
    );
  });

  it('path traversal, encoded or not, absolute paths and links out of --runs: 403, never the file', async () => {
    const attempts = [
      '/files/../outside/secret.txt',
      '/files/alpha/../../outside/secret.txt',
      '/files/%2e%2e/outside/secret.txt',
      '/files/alpha/%2e%2e%2f%2e%2e%2foutside%2fsecret.txt',
      '/files/%2E%2E%2F%2E%2E%2Foutside%2Fsecret.txt',
      '/files//etc/passwd',
      '/files/%2fetc%2fpasswd',
      `/files/${encodeURIComponent(join(outside, 'secret.txt'))}`,
      '/files/alpha/./config.json',
      '/files/alpha/evil-dir/secret.txt',
      '/files/alpha/evil-file.txt',
      '/files/escape/secret.txt',
    ];
    for (const path of attempts) {
      const r = await rawRequest(base, path);
      assert.equal(r.status, 403, `${path}: ${r.status} ${r.body}`);
      assert.ok(!r.body.toString().includes('TOP SECRET'), path);
    }
    for (const path of [
      '/files/alpha/a%5c..%5c..%5coutside%5csecret.txt',
      '/files/alpha\\..\\..\\secret.txt',
    ]) {
      const r = await rawRequest(base, path);
      assert.ok([400, 403].includes(r.status), `${path}: ${r.status}`);
    }
    // The API's ids are checked the same way.
    for (const path of [
      '/api/run?id=../outside',
      '/api/run?id=%2e%2e',
      '/api/run?id=/etc',
      '/run?id=escape',
    ]) {
      assert.equal((await rawRequest(base, path)).status, 404, path);
    }
    // Assets: only the bundle's own names.
    for (const path of [
      '/assets/../package.json',
      '/assets/%2e%2e%2fpackage.json',
      '/assets/wasm/../../x.wasm',
    ]) {
      const r = await rawRequest(base, path);
      assert.ok(r.status === 403 || r.status === 404, `${path}: ${r.status}`);
    }
  });

  it('hidden and .tmp checkpoint folders and *.tmp files are not served; folders have no listing', async () => {
    for (const path of [
      '/files/alpha/checkpoints/.epoch-0002.tmp/generator/model.json',
      '/files/alpha/checkpoints/%2eepoch-0002.tmp/generator/model.json',
      '/files/alpha/checkpoints/epoch-0001/generator/model.json.tmp',
      '/files/.hidden/config.json',
      '/files/alpha/checkpoints',
      '/files/alpha',
      '/files/alpha/nothing-here.json',
    ]) {
      assert.equal((await rawRequest(base, path)).status, 404, path);
    }
  });

  it('bad requests: 400 bad percent-encoding, 414 long URL, 405 other methods, 404 unknown runs, 421 foreign Host', async () => {
    assert.equal((await rawRequest(base, '/files/%zz')).status, 400);
    assert.equal((await rawRequest(base, '/files/alpha/%E0%A4%A')).status, 400);
    assert.equal((await rawRequest(base, '/api/run?id=%')).status, 400);
    assert.equal((await rawRequest(base, '/files/alpha/a%00b')).status, 400);
    const long = await rawRequest(base, `/files/${'a'.repeat(3000)}`);
    assert.equal(long.status, 414);
    const huge = await rawRequest(base, `/files/${'a'.repeat(40000)}`);
    assert.equal(huge.status, 414, 'over the parser limit too');
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
      const r = await rawRequest(base, '/files/alpha/config.json', {
        method,
        body: method === 'POST' ? 'x=1' : '',
      });
      assert.equal(r.status, 405, method);
      assert.equal(r.headers.allow, 'GET, HEAD');
    }
    assert.equal((await rawRequest(base, '/api/run?id=nope')).status, 404);
    assert.equal((await rawRequest(base, '/run?id=nope')).status, 404);
    assert.equal((await rawRequest(base, '/try?run=nope')).status, 404);
    assert.equal((await rawRequest(base, '/api/events?id=nope')).status, 404);
    assert.equal((await rawRequest(base, '/api/run')).status, 400);
    assert.equal((await rawRequest(base, '/nowhere')).status, 404);
    assert.equal((await rawRequest(base, '/', { headers: { Host: 'evil.example:80' } })).status, 421);
  });

  it('never serves a model file half-written while train replaces it (length always matches, one version)', async () => {
    const dir = join(runs, 'alpha', 'checkpoints', 'epoch-0001', 'generator');
    let writing = true;
    const writer = (async () => {
      for (let v = 1; writing; v = (v % 250) + 1) {
        // as saveModel does: write under a temporary name, then rename over the old file
        await writeFile(join(dir, 'weights.bin.tmp'), Buffer.alloc(100_000 + v * 100, v));
        await rename(join(dir, 'weights.bin.tmp'), join(dir, 'weights.bin'));
      }
    })();
    try {
      for (let i = 0; i < 40; i++) {
        const r = await rawRequest(base, '/files/alpha/checkpoints/epoch-0001/generator/weights.bin');
        assert.equal(r.status, 200);
        assert.equal(Number(r.headers['content-length']), r.body.length);
        const v = r.body[0]!;
        assert.ok(v === 1 || r.body.length === 100_000 + v * 100, 'length of the version it holds');
        assert.ok(
          r.body.every((b) => b === v),
          'one version only',
        );
      }
    } finally {
      writing = false;
      await writer;
    }
  });

  it('live updates: snapshot, appended lines (whole lines only), rewrites, heartbeats', async () => {
    const url = `${base}api/events?id=alpha`;
    const metrics = join(runs, 'alpha', 'metrics.jsonl');
    const first = await readEvents(url, (ev) => ev.some((e) => e.event === 'config'));
    assert.equal(first.status, 200);
    assert.deepEqual(
      first.events.map((e) => e.event),
      ['hello', 'metrics-reset', 'eval', 'checkpoints', 'samples', 'state', 'config'],
    );
    assert.equal(JSON.parse(first.events[1]!.data).length, 2);
    // Appends arrive as `metrics`; a line without its newline yet waits for it.
    const pending = readEvents(
      url,
      (ev, comments) => comments >= 1 && ev.filter((e) => e.event === 'metrics').length >= 2,
    );
    await new Promise((r) => setTimeout(r, 300));
    await appendFile(metrics, metricsLine(3));
    await new Promise((r) => setTimeout(r, 300));
    const line4 = metricsLine(4);
    await appendFile(metrics, line4.slice(0, 20));
    await new Promise((r) => setTimeout(r, 300));
    await appendFile(metrics, line4.slice(20));
    const live = await pending;
    const appended = live.events.filter((e) => e.event === 'metrics').map((e) => JSON.parse(e.data));
    assert.deepEqual(
      appended.map((rows: { step: number }[]) => rows.map((r) => r.step)),
      [[3], [4]],
    );
    assert.ok(live.comments >= 1, 'heartbeat comments');
    // A rewrite (resume truncating metrics.jsonl, renamed into place) is a metrics-reset.
    const reset = readEvents(url, (ev) => ev.filter((e) => e.event === 'metrics-reset').length >= 2);
    await new Promise((r) => setTimeout(r, 300));
    await writeFile(`${metrics}.tmp`, metricsLine(1));
    await rename(`${metrics}.tmp`, metrics);
    const resets = (await reset).events.filter((e) => e.event === 'metrics-reset');
    assert.equal(JSON.parse(resets[1]!.data).length, 1);
    // A new checkpoint shows up as a `checkpoints` event.
    const ck = readEvents(url, (ev) => ev.filter((e) => e.event === 'checkpoints').length >= 2);
    await new Promise((r) => setTimeout(r, 300));
    await mkdir(join(runs, 'alpha', 'checkpoints', 'epoch-0002', 'generator'), { recursive: true });
    const lists = (await ck).events.filter((e) => e.event === 'checkpoints').map((e) => JSON.parse(e.data));
    assert.deepEqual(
      lists[1].map((c: { name: string }) => c.name),
      ['epoch-0001', 'epoch-0002'],
    );
  });

  it('live-update connections are bounded (503 beyond the limit) and freed when a client leaves', async () => {
    const url = `${base}api/events?id=alpha`;
    const ctrls = [new AbortController(), new AbortController(), new AbortController()];
    const open = await Promise.all(ctrls.map((c) => fetch(url, { signal: c.signal })));
    assert.deepEqual(
      open.map((r) => r.status),
      [200, 200, 200],
    );
    const refused = await rawRequest(base, '/api/events?id=alpha');
    assert.equal(refused.status, 503);
    assert.equal(refused.headers['retry-after'], '5');
    assert.equal((await rawRequest(base, '/api/events?id=alpha', { method: 'HEAD' })).status, 200);
    ctrls[0]!.abort();
    for (let i = 0; i < 50 && srv.eventClients() > 2; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(srv.eventClients(), 2);
    const c4 = new AbortController();
    const fourth = await fetch(url, { signal: c4.signal });
    assert.equal(fourth.status, 200);
    for (const c of [...ctrls, c4]) c.abort();
    for (let i = 0; i < 50 && srv.eventClients() > 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(srv.eventClients(), 0);
    // Pages and files still answer meanwhile.
    assert.equal((await rawRequest(base, '/api/runs')).status, 200);
  });

  it('CLI: pix2pix serve prints its URL (--json), serves, and stops cleanly on SIGINT', async () => {
    const child = spawn(process.execPath, [CLI, 'serve', '--runs', runs, '--port', '0', '--json'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    for (let i = 0; i < 300 && !stdout.includes('\n'); i++) await new Promise((r) => setTimeout(r, 50));
    const { url } = JSON.parse(stdout.trim()) as { url: string };
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    assert.equal((await rawRequest(url, '/api/run?id=alpha')).status, 200);
    child.kill('SIGINT');
    assert.equal(await exited, 0, stderr);
    assert.match(stderr, /serving .* at http:\/\/127\.0\.0\.1:\d+\/ \(Ctrl-C stops\)\nstopped\n$/);
    const bad = spawnSync(process.execPath, [CLI, 'serve', '--runs', join(root, 'nope')], {
      encoding: 'utf8',
    });
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /^error: --runs .* does not exist: point it at a folder of runs/);
  });

  it('the bundle: builds without Node modules into a folder, and is stale once a source is newer', async () => {
    const out = join(root, 'bundle');
    const r = await buildWebBundle({ outDir: out });
    assert.deepEqual(
      ['dashboard.js', 'style.css', 'try.js'].filter((f) => r.files.some((x) => x.name === f)),
      ['dashboard.js', 'style.css', 'try.js'],
    );
    const dashboard = r.files.find((f) => f.name === 'dashboard.js')!;
    assert.ok(dashboard.bytes < 40_000, `the dashboard stays lean (${dashboard.bytes} bytes)`);
    assert.equal(await staleReason(out), undefined);
    const record = JSON.parse(await readFile(join(out, 'build.json'), 'utf8'));
    assert.ok(
      record.inputs.includes('src/infer/tiling.ts'),
      'the try-it page bundles the shared tiling code',
    );
    assert.ok(record.inputs.includes('src/models/instance-norm.ts'));
    await writeFile(join(out, 'build.json'), JSON.stringify({ ...record, time: 0 }));
    assert.match((await staleReason(out)) ?? '', /changed$/);
    await rm(join(out, 'try.js'));
    assert.equal(await staleReason(out), 'try.js is missing');
  });

  it("each run's state (training, stopped, finished) is in /api/runs, /api/run and a `state` event when it changes", async () => {
    const own = join(await tempDir('p2p-serve-state-'), 'runs');
    await fakeRun(join(own, 'done'), { epochs: 3 }); // config.json: 3 epochs
    await fakeRun(join(own, 'halted'));
    await fakeRun(join(own, 'busy'));
    const lock = await lockRun(join(own, 'busy'), { info: () => {}, warn: () => {} });
    const s = await serve({ runs: own, port: 0, pollMs: 50 });
    try {
      const list = JSON.parse((await rawRequest(s.url, '/api/runs')).body.toString()) as RunList;
      assert.deepEqual(Object.fromEntries(list.runs.map((r) => [r.id, r.state])), {
        busy: { state: 'training', epoch: 1, totalEpochs: 3, holder: lock.holder },
        done: { state: 'finished', epoch: 3, totalEpochs: 3 },
        halted: { state: 'stopped', epoch: 1, totalEpochs: 3 },
      });
      const detail = JSON.parse((await rawRequest(s.url, '/api/run?id=done')).body.toString()) as RunDetail;
      assert.equal(detail.summary.state?.state, 'finished');
      // The run page follows it live: released, the lock no longer makes the run training.
      const url = `${s.url}api/events?id=busy`;
      const states = (ev: { event: string; data: string }[]) =>
        ev.filter((e) => e.event === 'state').map((e) => (JSON.parse(e.data) as RunState).state);
      const pending = readEvents(url, (ev) => states(ev).length >= 2);
      await new Promise((r) => setTimeout(r, 200));
      await lock.release();
      assert.deepEqual(states((await pending).events), ['training', 'stopped']);
    } finally {
      await lock.release();
      await s.close();
    }
  });

  it('refuses a missing --runs and a busy port with one clear error', async () => {
    await assert.rejects(serve({ runs: join(root, 'nope'), port: 0 }), /--runs .*does not exist/);
    await assert.rejects(serve({ runs, port: srv.port }), /port \d+ on 127\.0\.0\.1 is in use/);
    assert.ok((await readFile(join(runs, 'alpha', 'config.json'), 'utf8')).length > 0);
  });
});
