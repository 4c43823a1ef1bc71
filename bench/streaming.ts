import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mkdtempSync } from 'node:fs';
import pino from 'pino';
import { defaultConfig } from '../src/config/schema.js';
import { backgroundContext } from '../src/core/context.js';
import type { ContainerExecTarget, ContainersArea } from '../src/services/containers/api.js';
import type { PodsArea, SandboxView } from '../src/services/pods/api.js';
import { createStreaming } from '../src/services/streaming/area.js';
import { spdyExec, spdyForward, spdyUpgrade } from '../test/helpers/spdy-client.js';
import { wsExec } from '../test/helpers/ws-client.js';

// Streaming figures: exec round-trip latency (Exec RPC → status on the error stream),
// exec stdin→stdout throughput, port-forward throughput into a pod network namespace
// (one connection, then several at once). The container is a busybox rootfs run by
// runc directly, so the figures are the streaming path's, not container start-up's.

const RUNC = '/usr/sbin/runc';
const log = pino({ level: 'silent' });
const dir = mkdtempSync(join(tmpdir(), 'cricket-bench-stream-'));
const bundle = join(dir, 'bundle');
const rootfs = join(bundle, 'rootfs');
mkdirSync(join(rootfs, 'bin'), { recursive: true });
for (const d of ['proc', 'dev', 'sys', 'tmp']) mkdirSync(join(rootfs, d));
copyFileSync('/bin/busybox', join(rootfs, 'bin/busybox'));
for (const a of ['sh', 'cat', 'nc', 'true', 'head']) symlinkSync('busybox', join(rootfs, 'bin', a));
execFileSync(RUNC, ['spec'], { cwd: bundle });
const spec = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
spec.process.terminal = false;
spec.process.args = ['/bin/nc', '-ll', '-p', '9000', '-e', '/bin/cat'];
spec.process.env = ['PATH=/bin'];
writeFileSync(join(bundle, 'config.json'), JSON.stringify(spec));
const id = `cricket-bench-${process.pid}`;
const root = join(dir, 'runc');
const cleanup = () => {
  spawnSync(RUNC, ['--root', root, 'delete', '--force', id], { stdio: 'ignore' });
  rmSync(dir, { recursive: true, force: true });
};
process.on('exit', cleanup);
const started = spawnSync(RUNC, ['--root', root, 'run', '-d', '--pid-file', join(dir, 'pid'), '-b', bundle, id], { stdio: 'ignore' });
if (started.status !== 0) throw new Error('runc run failed');
const pid = Number(readFileSync(join(dir, 'pid'), 'utf8'));

const target = { id, podSandboxId: 'p', state: 'running', tty: false, stdin: true, runtimePath: RUNC, runtimeRoot: root, bundleDir: dir } as ContainerExecTarget;
const containers = { execTarget: () => target } as unknown as ContainersArea;
const pods = { get: () => ({ id: 'p', state: 'ready', netnsPath: `/proc/${pid}/ns/net` }) as unknown as SandboxView } as unknown as PodsArea;
const area = await createStreaming({ config: defaultConfig(), log }, { containers, pods });
const ctx = backgroundContext(log, 'bench');

const ms = (ns: bigint) => Number(ns) / 1e6;
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

// 1. Exec round trip.
for (const transport of ['spdy', 'websocket'] as const) {
  const lat: number[] = [];
  for (let i = 0; i < 30; i++) {
    const t0 = process.hrtime.bigint();
    const { url } = await area.handlers.Exec!(ctx, { containerId: id, cmd: ['true'], stdin: false, stdout: true, stderr: false, tty: false });
    const r = transport === 'spdy' ? await spdyExec(url!) : await wsExec(url!, { closeStdin: false });
    if (!r.error.includes('Success')) throw new Error(`exec failed: ${r.error}`);
    lat.push(ms(process.hrtime.bigint() - t0));
  }
  console.log(`exec round trip (${transport}, 'true', 30 runs): p50 ${pct(lat, 50).toFixed(1)} ms, p95 ${pct(lat, 95).toFixed(1)} ms`);
}

// 1b. Exec round trip with a TTY (the pty helper's start-up included; the client sends
// its terminal size at once, as kubectl does).
{
  const lat: number[] = [];
  for (let i = 0; i < 30; i++) {
    const t0 = process.hrtime.bigint();
    const { url } = await area.handlers.Exec!(ctx, { containerId: id, cmd: ['true'], stdin: false, stdout: true, stderr: false, tty: true });
    const r = await spdyExec(url!, { tty: true, resize: [{ width: 80, height: 24 }] });
    if (!r.error.includes('Success')) throw new Error(`exec -t failed: ${r.error}`);
    lat.push(ms(process.hrtime.bigint() - t0));
  }
  console.log(`exec round trip (spdy, tty, 'true', 30 runs): p50 ${pct(lat, 50).toFixed(1)} ms, p95 ${pct(lat, 95).toFixed(1)} ms`);
}

async function* chunks(total: number): AsyncGenerator<Buffer> {
  const block = Buffer.alloc(1 << 20, 0x5a);
  for (let sent = 0; sent < total; sent += block.length) yield block.subarray(0, Math.min(block.length, total - sent));
}

// 2. Exec stdin → cat → stdout.
{
  const total = 200e6;
  const { url } = await area.handlers.Exec!(ctx, { containerId: id, cmd: ['cat'], stdin: true, stdout: true, stderr: false, tty: false });
  let got = 0;
  const t0 = process.hrtime.bigint();
  await spdyExec(url!, { stdin: chunks(total), onStdout: (b) => (got += b.length) });
  const s = ms(process.hrtime.bigint() - t0) / 1000;
  if (got !== total) throw new Error(`exec cat returned ${got} of ${total} bytes`);
  console.log(`exec stdin→stdout (SPDY, cat): ${total / 1e6} MB each way in ${s.toFixed(2)} s = ${(total / 1e6 / s).toFixed(0)} MB/s`);
}

// 3. Port-forward echo, 1 and 4 connections.
for (const conns of [1, 4]) {
  const total = 200e6 / conns;
  const { url } = await area.handlers.PortForward!(ctx, { podSandboxId: 'p', port: [9000] });
  const up = await spdyUpgrade(url!, ['portforward.k8s.io']);
  if (!up.ok) throw new Error('upgrade failed');
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: conns }, async (_, i) => {
      const c = spdyForward(up.session, 9000, i);
      let got = 0;
      const done = new Promise<void>((r) => c.data.on('data', (b: Buffer) => {
        got += b.length;
        if (got >= total) r();
      }));
      for await (const b of chunks(total)) if (!c.data.write(b)) await new Promise((r) => c.data.once('drain', r));
      await done;
      c.data.end();
    }),
  );
  const s = ms(process.hrtime.bigint() - t0) / 1000;
  up.session.destroy();
  console.log(`port-forward echo (SPDY, ${conns} connection${conns > 1 ? 's' : ''}): ${(total * conns) / 1e6} MB each way in ${s.toFixed(2)} s = ${((total * conns) / 1e6 / s).toFixed(0)} MB/s`);
}

await area.close();
process.exit(0);
