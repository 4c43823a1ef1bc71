import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, symlinkSync, copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { backgroundContext } from '../../src/core/context.js';
import { defaultConfig } from '../../src/config/schema.js';
import { CricketError } from '../../src/core/errors.js';
import type { ContainerExecTarget, ContainersArea } from '../../src/services/containers/api.js';
import type { PodsArea, SandboxView } from '../../src/services/pods/api.js';
import { createStreaming } from '../../src/services/streaming/area.js';
import type { StreamingArea } from '../../src/services/streaming/api.js';
import { spdyExec, spdyForward, spdyUpgrade } from '../helpers/spdy-client.js';
import { wsExec } from '../helpers/ws-client.js';
import { removeDir, tempDir } from '../helpers/daemon.js';

// The streaming area against a real runc container this test starts itself (a
// busybox rootfs in its own namespaces, network included), so exec, the TTY path and
// port-forward run for real without depending on the containers area.

const RUNC = '/usr/sbin/runc';
const log = pino({ level: 'silent' });
const APPLETS = ['sh', 'cat', 'nc', 'sleep', 'head', 'wc', 'stty', 'echo', 'tty', 'tr', 'ls', 'true', 'seq'];

interface Box {
  id: string;
  root: string;
  dir: string;
  pid: number;
}

function startContainer(): Box {
  const dir = tempDir('cricket-stream-');
  const bundle = join(dir, 'bundle');
  const rootfs = join(bundle, 'rootfs');
  mkdirSync(join(rootfs, 'bin'), { recursive: true });
  for (const d of ['proc', 'dev', 'sys', 'tmp']) mkdirSync(join(rootfs, d));
  copyFileSync('/bin/busybox', join(rootfs, 'bin/busybox'));
  for (const a of APPLETS) symlinkSync('busybox', join(rootfs, 'bin', a));
  execFileSync(RUNC, ['spec'], { cwd: bundle });
  const spec = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
  spec.process.terminal = false;
  // pid 1 is a persistent echo server on port 9000 (port-forward's target).
  spec.process.args = ['/bin/nc', '-ll', '-p', '9000', '-e', '/bin/cat'];
  spec.process.env = ['PATH=/bin', 'TERM=xterm'];
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(spec));
  const id = `cricket-stream-${process.pid}-${Math.random().toString(16).slice(2, 8)}`;
  const root = join(dir, 'runc');
  const pidFile = join(dir, 'pid');
  // stdio ignored: a detached container inherits runc's, and a pipe would never close.
  const r = spawnSync(RUNC, ['--root', root, '--log', join(dir, 'runc.log'), 'run', '-d', '--pid-file', pidFile, '-b', bundle, id], { stdio: 'ignore' });
  assert.equal(r.status, 0, `runc run failed: ${r.status === null ? r.error : readFileSync(join(dir, 'runc.log'), 'utf8')}`);
  return { id, root, dir, pid: Number(readFileSync(pidFile, 'utf8')) };
}

/**
 * A container under conmon, as the containers area runs them: conmon holds its stdio,
 * offers the attach socket and the control fifo. pid 1 echoes what it reads.
 */
async function startConmonContainer(tty: boolean): Promise<Box & { attach: string; ctl: string }> {
  const dir = tempDir('cricket-attach-');
  const bundle = join(dir, 'bundle');
  const rootfs = join(bundle, 'rootfs');
  mkdirSync(join(rootfs, 'bin'), { recursive: true });
  for (const d of ['proc', 'dev', 'sys', 'tmp']) mkdirSync(join(rootfs, d));
  copyFileSync('/bin/busybox', join(rootfs, 'bin/busybox'));
  for (const a of APPLETS) symlinkSync('busybox', join(rootfs, 'bin', a));
  execFileSync(RUNC, ['spec'], { cwd: bundle });
  const spec = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
  spec.process.terminal = tty;
  spec.process.args = ['/bin/sh', '-c', tty ? 'while read l; do echo "got:$l $(stty size)"; done' : 'while read l; do echo "got:$l"; echo "err:$l" >&2; done'];
  spec.process.env = ['PATH=/bin', 'TERM=xterm'];
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(spec));
  const id = `cricket-attach-${process.pid}-${Math.random().toString(16).slice(2, 8)}`;
  const root = join(dir, 'runc');
  mkdirSync(join(dir, 'exits'));
  mkdirSync(join(dir, 'sock'));
  const args = ['--api-version', '1', '-c', id, '-u', id, '-n', id, '-r', RUNC, '-b', bundle, '-p', join(dir, 'pid'), '-P', join(dir, 'conmon.pid'),
    '-l', `k8s-file:${join(dir, 'ctr.log')}`, '--exit-dir', join(dir, 'exits'), '--socket-dir-path', join(dir, 'sock'), '-i', '--leave-stdin-open',
    '--runtime-arg', '--root', '--runtime-arg', root];
  if (tty) args.push('-t');
  const r = spawnSync('/usr/bin/conmon', args, { stdio: 'ignore' });
  assert.equal(r.status, 0, 'conmon started');
  for (let i = 0; i < 200; i++) {
    try {
      readFileSync(join(dir, 'pid'));
      break;
    } catch {
      await new Promise((res) => setTimeout(res, 25));
    }
  }
  execFileSync(RUNC, ['--root', root, 'start', id]);
  return { id, root, dir, pid: Number(readFileSync(join(dir, 'pid'), 'utf8')), attach: join(dir, 'sock', id, 'attach'), ctl: join(bundle, 'ctl') };
}

function stopContainer(b: Box): void {
  spawnSync(RUNC, ['--root', b.root, 'delete', '--force', b.id], { stdio: 'ignore' });
  removeDir(b.dir);
}

function fakeAreas(box: Box, state: ContainerExecTarget['state'] = 'running') {
  const target: ContainerExecTarget = {
    id: box.id,
    podSandboxId: 'pod1',
    state,
    tty: false,
    runtimeArgs: [],
    runtimeType: 'oci',
    user: { uid: 0, gid: 0, additionalGids: [] },
    stdin: true,
    runtimePath: RUNC,
    runtimeRoot: box.root,
    attachSocketPath: join(box.dir, 'no-attach'),
    ctlFifoPath: join(box.dir, 'no-ctl'),
    bundleDir: box.dir,
  };
  const containers = { execTarget: (id: string) => (id === box.id ? target : undefined) } as unknown as ContainersArea;
  const pod = { id: 'pod1', state: 'ready', netnsPath: `/proc/${box.pid}/ns/net` } as unknown as SandboxView;
  const pods = { get: (id: string) => (id === 'pod1' ? pod : undefined) } as unknown as PodsArea;
  return { containers, pods, target };
}

async function setup(t: { after: (fn: () => unknown) => void }) {
  const box = startContainer();
  t.after(() => stopContainer(box));
  const { containers, pods, target } = fakeAreas(box);
  const area: StreamingArea = await createStreaming({ config: defaultConfig(), log }, { containers, pods });
  t.after(() => area.close());
  const ctx = backgroundContext(log, 'test');
  const exec = async (cmd: string[], o: Partial<{ stdin: boolean; stdout: boolean; stderr: boolean; tty: boolean }> = {}) =>
    (await area.handlers.Exec!(ctx, { containerId: box.id, cmd, stdin: false, stdout: true, stderr: false, tty: false, ...o })).url!;
  const pf = async () => (await area.handlers.PortForward!(ctx, { podSandboxId: 'pod1', port: [9000] })).url!;
  return { box, area, ctx, exec, pf, target };
}

/** A 100 MB stream of non-repeating-ish bytes, in 1 MiB chunks. */
async function* pattern(total: number): AsyncGenerator<Buffer> {
  const block = Buffer.alloc(1 << 20);
  for (let i = 0; i < block.length; i += 4) block.writeUInt32LE((i * 2654435761) >>> 0, i);
  for (let sent = 0, n = 0; sent < total; sent += block.length, n++) {
    const b = Buffer.from(block.subarray(0, Math.min(block.length, total - sent)));
    b.writeUInt32LE(n, 0);
    yield b;
  }
}

async function patternHash(total: number): Promise<string> {
  const h = createHash('sha256');
  for await (const b of pattern(total)) h.update(b);
  return h.digest('hex');
}

test('exec without a TTY: stdout, stderr, exit code; bad requests are refused', { timeout: 180000 }, async (t) => {
  const { exec, area, ctx, box } = await setup(t);
  const r = await spdyExec(await exec(['sh', '-c', 'echo out; echo err >&2; exit 3'], { stderr: true }), { stderr: true });
  assert.equal(r.stdout.toString(), 'out\n');
  assert.equal(r.stderr.toString(), 'err\n');
  assert.equal(JSON.parse(r.error).details.causes[0].message, '3');
  const ok = await spdyExec(await exec(['true']));
  assert.equal(ok.error, '{"metadata":{},"status":"Success"}');
  const missing = await spdyExec(await exec(['/bin/does-not-exist'], { stderr: true }), { stderr: true });
  assert.equal(JSON.parse(missing.error).status, 'Failure');

  const code = (p: Promise<unknown>) => p.then(() => 'ok', (e: CricketError) => e.code);
  const Exec = area.handlers.Exec!;
  assert.equal(await code(Exec(ctx, { containerId: box.id, cmd: ['true'], stdin: false, stdout: false, stderr: false, tty: false })), 'InvalidArgument');
  assert.equal(await code(Exec(ctx, { containerId: box.id, cmd: ['true'], stdin: false, stdout: true, stderr: true, tty: true })), 'InvalidArgument');
  assert.equal(await code(Exec(ctx, { containerId: box.id, cmd: [], stdin: false, stdout: true, stderr: false, tty: false })), 'InvalidArgument');
  assert.equal(await code(Exec(ctx, { containerId: 'nope', cmd: ['true'], stdin: false, stdout: true, stderr: false, tty: false })), 'NotFound');
  assert.equal(await code(area.handlers.PortForward!(ctx, { podSandboxId: 'nope', port: [80] })), 'NotFound');
  assert.equal(await code(area.handlers.PortForward!(ctx, { podSandboxId: 'pod1', port: [70000] })), 'InvalidArgument');
});

test('exec into a container that is not running is FAILED_PRECONDITION', { timeout: 180000 }, async (t) => {
  const box = startContainer();
  t.after(() => stopContainer(box));
  const { containers, pods } = fakeAreas(box, 'exited');
  const area = await createStreaming({ config: defaultConfig(), log }, { containers, pods });
  t.after(() => area.close());
  await assert.rejects(
    area.handlers.Exec!(backgroundContext(log, 't'), { containerId: box.id, cmd: ['true'], stdin: false, stdout: true, stderr: false, tty: false }),
    (e: CricketError) => e.code === 'FailedPrecondition',
  );
});

test('exec with stdin: 100 MB each way through cat over SPDY and over WebSocket v5', { timeout: 180000 }, async (t) => {
  const { exec } = await setup(t);
  const total = 100 * 1000 * 1000;
  const h = createHash('sha256');
  let got = 0;
  const started = process.hrtime.bigint();
  const r = await spdyExec(await exec(['cat'], { stdin: true, stderr: false }), {
    stdin: pattern(total),
    onStdout: (b) => {
      h.update(b);
      got += b.length;
    },
  });
  const secs = Number(process.hrtime.bigint() - started) / 1e9;
  t.diagnostic(`exec stdin->stdout: ${total / 1e6} MB each way in ${secs.toFixed(2)} s (${(total / 1e6 / secs).toFixed(0)} MB/s)`);
  assert.equal(r.error, '{"metadata":{},"status":"Success"}');
  assert.equal(got, total);
  assert.equal(h.digest('hex'), await patternHash(total));

  // The same 100 MB through the WebSocket v5 transport (crictl --transport websocket).
  const all: Buffer[] = [];
  for await (const b of pattern(total)) all.push(b);
  const wsStarted = process.hrtime.bigint();
  const big = await wsExec(await exec(['cat'], { stdin: true }), { stdin: Buffer.concat(all) });
  const wsSecs = Number(process.hrtime.bigint() - wsStarted) / 1e9;
  t.diagnostic(`exec stdin->stdout over WebSocket: ${total / 1e6} MB each way in ${wsSecs.toFixed(2)} s (${(total / 1e6 / wsSecs).toFixed(0)} MB/s)`);
  assert.equal(big.error, '{"metadata":{},"status":"Success"}');
  assert.equal(big.stdout.length, total);
  assert.equal(createHash('sha256').update(big.stdout).digest('hex'), await patternHash(total));

  const w = await wsExec(await exec(['sh', '-c', 'cat; echo; echo bye >&2'], { stdin: true, stderr: true }), { stdin: Buffer.from('over websocket') });
  assert.equal(w.stdout.toString(), 'over websocket\n');
  assert.equal(w.stderr.toString(), 'bye\n');
  assert.equal(w.error, '{"metadata":{},"status":"Success"}');
});

test('exec with a TTY: a real terminal, resized by the client, stdin typed in', { timeout: 180000 }, async (t) => {
  const { exec } = await setup(t);
  const script = 'for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do s=$(stty size); [ "$s" = "45 123" ] && break; sleep 0.1; done; echo "size=$s"; tty; read x; echo "typed=$x"; exit 5';
  const r = await spdyExec(await exec(['sh', '-c', script], { tty: true, stdin: true }), {
    tty: true,
    stdin: Buffer.from('hello\n'),
    resize: [{ width: 123, height: 45 }],
  });
  const out = r.stdout.toString();
  assert.match(out, /size=45 123/);
  assert.match(out, /\/dev\/pts\/\d+/);
  assert.match(out, /typed=hello/);
  assert.equal(JSON.parse(r.error).details.causes[0].message, '5');
});

test('a TTY without stdin is a terminal nobody types into, not one at EOF', { timeout: 180000 }, async (t) => {
  const { exec } = await setup(t);
  // At EOF `read` would return at once and print "after-read" before the marker;
  // a silent terminal keeps it waiting until the marker's subshell ends the shell.
  const script = '(sleep 0.5; echo marker; kill $$) & read x; echo after-read; wait';
  const r = await spdyExec(await exec(['sh', '-c', script], { tty: true }), { tty: true, resize: [{ width: 80, height: 24 }] });
  const out = r.stdout.toString();
  assert.match(out, /marker/);
  assert.doesNotMatch(out, /after-read/, `read saw EOF: ${out}`);
});

test('a client that goes away takes its exec process with it', { timeout: 180000 }, async (t) => {
  const { exec } = await setup(t);
  const marker = String(900000 + Math.floor(Math.random() * 99999));
  const up = await spdyUpgrade(await exec(['sleep', marker]), ['v4.channel.k8s.io']);
  assert.ok(up.ok);
  if (!up.ok) return;
  up.session.openStream({ streamtype: ['error'] }).end();
  up.session.openStream({ streamtype: ['stdout'] }).end();
  const running = () =>
    readdirSync('/proc').filter((p) => /^\d+$/.test(p)).some((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8') === `sleep\0${marker}\0`;
      } catch {
        return false;
      }
    });
  for (let i = 0; i < 100 && !running(); i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(running(), 'the exec process started');
  up.socket.destroy();
  for (let i = 0; i < 100 && running(); i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(!running(), 'the exec process is gone');
});

test('port-forward into the pod network namespace: 100 MB echoed over SPDY; a closed port reports an error', { timeout: 180000 }, async (t) => {
  const { pf } = await setup(t);
  const up = await spdyUpgrade(await pf(), ['portforward.k8s.io']);
  assert.ok(up.ok);
  if (!up.ok) return;
  t.after(() => up.session.destroy());
  const total = 100 * 1000 * 1000;
  const c = spdyForward(up.session, 9000, 0);
  const h = createHash('sha256');
  let got = 0;
  const done = new Promise<void>((resolve) => {
    c.data.on('data', (b: Buffer) => {
      h.update(b);
      got += b.length;
      if (got >= total) resolve();
    });
    c.data.on('end', () => resolve());
  });
  const started = process.hrtime.bigint();
  for await (const b of pattern(total)) if (!c.data.write(b)) await new Promise((r) => c.data.once('drain', r));
  await done;
  const secs = Number(process.hrtime.bigint() - started) / 1e9;
  t.diagnostic(`port-forward echo: ${total / 1e6} MB each way in ${secs.toFixed(2)} s (${(total / 1e6 / secs).toFixed(0)} MB/s)`);
  assert.equal(got, total);
  assert.equal(h.digest('hex'), await patternHash(total));
  c.data.end();

  const closed = spdyForward(up.session, 9001, 1);
  closed.data.end();
  assert.match(await closed.error, /port 9001.*(refused|Connection)/i);
});

for (const tty of [false, true]) {
  test(`attach through conmon's socket${tty ? ' with a TTY (resize via the control fifo)' : ''}; leaving keeps the container running`, { timeout: 180000 }, async (t) => {
    const box = await startConmonContainer(tty);
    t.after(() => stopContainer(box));
    const { containers, pods, target } = fakeAreas(box);
    Object.assign(target, { attachSocketPath: box.attach, ctlFifoPath: box.ctl, tty });
    const area = await createStreaming({ config: defaultConfig(), log }, { containers, pods });
    t.after(() => area.close());
    const { url } = await area.handlers.Attach!(backgroundContext(log, 't'), { containerId: box.id, stdin: true, stdout: true, stderr: !tty, tty });
    const up = await spdyUpgrade(url!, ['v4.channel.k8s.io']);
    assert.ok(up.ok);
    if (!up.ok) return;
    up.session.openStream({ streamtype: ['error'] }).end();
    const stdin = up.session.openStream({ streamtype: ['stdin'] });
    const stdout = up.session.openStream({ streamtype: ['stdout'] });
    const stderr = tty ? undefined : up.session.openStream({ streamtype: ['stderr'] });
    const resize = tty ? up.session.openStream({ streamtype: ['resize'] }) : undefined;
    stdout.end();
    stderr?.end();
    let out = '';
    let err = '';
    stdout.on('data', (b: Buffer) => (out += b.toString()));
    stderr?.on('data', (b: Buffer) => (err += b.toString()));
    resize?.write(JSON.stringify({ Width: 77, Height: 33 }));
    await new Promise((r) => setTimeout(r, 300));
    stdin.write('hello\n');
    for (let i = 0; i < 100 && !(out.includes('got:hello') && (tty || err.includes('err:hello'))); i++) await new Promise((r) => setTimeout(r, 50));
    assert.match(out, /got:hello/);
    if (tty) assert.match(out, /got:hello 33 77/);
    else assert.match(err, /err:hello/);
    up.session.destroy();
    await new Promise((r) => setTimeout(r, 300));
    const st = spawnSync(RUNC, ['--root', box.root, 'state', box.id], { encoding: 'utf8' });
    assert.equal(JSON.parse(st.stdout).status, 'running', 'detaching left the container running');
  });
}

test('a daemon killed mid exec -t leaves no TTY helper, runc or process behind', { timeout: 180000 }, async (t) => {
  const box = startContainer();
  t.after(() => stopContainer(box));
  const marker = String(800000 + Math.floor(Math.random() * 99999));
  const child = spawn(process.execPath, [join(import.meta.dirname, '../helpers/exec-tty-child.js'), RUNC, box.root, box.dir, box.id, 'sleep', marker], { stdio: 'ignore' });
  t.after(() => child.kill('SIGKILL'));
  // Everything of this session names the container (helper, runc) or is the marker process.
  const left = () =>
    readdirSync('/proc').filter((p) => /^\d+$/.test(p) && Number(p) !== child.pid).filter((p) => {
      try {
        const cmdline = readFileSync(`/proc/${p}/cmdline`, 'utf8');
        return (cmdline === `sleep\0${marker}\0` || cmdline.includes(box.id)) && !/\) Z /.test(readFileSync(`/proc/${p}/stat`, 'utf8'));
      } catch {
        return false;
      }
    });
  const sleeping = () => left().some((p) => readFileSync(`/proc/${p}/cmdline`, 'utf8') === `sleep\0${marker}\0`);
  for (let i = 0; i < 200 && !sleeping(); i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(sleeping(), 'the exec process started');
  child.kill('SIGKILL');
  for (let i = 0; i < 100 && left().length > 0; i++) await new Promise((r) => setTimeout(r, 50));
  const names = left().map((p) => readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0')[0]);
  assert.deepEqual(names, [], 'nothing of the session outlives the daemon');
});
