import { test } from 'node:test';
import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { CriCallError } from '../../src/client/cri-client.js';
import type { ContainerConfig, DeepPartial, PodSandboxConfig } from '../../src/gen/runtime/v1/api.js';
import { removeDir, startDaemon, tempDir, type TestDaemon } from '../helpers/daemon.js';
import { pushBusyboxImage } from '../helpers/oci-image.js';
import { makeTestNet } from '../helpers/pod-net.js';
import { imagesConfigToml, startRegistry } from '../helpers/registry.js';
import { RUNSC_HANDLER_TOML, TEST_HANDLER } from '../helpers/handler.js';
import { spdyAttachSay, spdyExec, spdyForward, spdyUpgrade } from '../helpers/spdy-client.js';
import { wsConnectRaw, wsExec } from '../helpers/ws-client.js';
import { SpdySession } from '../../src/streams/spdy/session.js';
import { createWebSocketStream } from 'ws';

// Exec, attach and port-forward through the real daemon: a pod with its own network
// namespace (a private CNI bridge), containers run by conmon + runc from a busybox
// image served by a loopback registry.

interface Env {
  d: TestDaemon;
  pod: { id: string; config: DeepPartial<PodSandboxConfig> };
  image: string;
}

async function setUp(t: { after: (fn: () => unknown) => void }): Promise<Env> {
  const dir = tempDir('cricket-streamd-');
  const logs = join(dir, 'logs');
  mkdirSync(logs, { recursive: true });
  const reg = await startRegistry();
  const net = makeTestNet(dir);
  const image = await pushBusyboxImage(reg.host, 'stream/busybox', 'v1');
  const toml = `${imagesConfigToml(dir, reg.host)}\n[logs]\nallowed_roots = [${JSON.stringify(logs)}]\n${RUNSC_HANDLER_TOML}`;
  const ddir = join(dir, 'daemon');
  mkdirSync(ddir, { recursive: true });
  const d = await startDaemon({ dir: ddir, configToml: toml, args: ['--cni-conf-dir', net.confDir] });
  t.after(async () => {
    try {
      for (const p of (await d.client.call('ListPodSandbox', {})).items) {
        await d.client.call('StopPodSandbox', { podSandboxId: p.id }).catch(() => {});
        await d.client.call('RemovePodSandbox', { podSandboxId: p.id }).catch(() => {});
      }
    } finally {
      await d.cleanup();
      net.destroy();
      await reg.stop();
      removeDir(dir);
    }
  });
  for (let i = 0; ; i++) {
    try {
      await d.client.call('ListContainers', {});
      break;
    } catch (err) {
      if (!(err instanceof CriCallError) || err.code !== status.UNAVAILABLE || i > 400) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  await d.client.call('PullImage', { image: { image: image.ref } });
  const uid = `uid-${Date.now()}`;
  const config: DeepPartial<PodSandboxConfig> = {
    metadata: { name: 'streampod', namespace: 'stream-test', uid, attempt: 0 },
    hostname: 'streampod',
    logDirectory: join(logs, `stream-test_streampod_${uid}`),
  };
  const { podSandboxId } = await d.client.call('RunPodSandbox', { config, runtimeHandler: TEST_HANDLER });
  return { d, pod: { id: podSandboxId, config }, image: image.ref };
}

let seq = 0;
async function run(env: Env, cmd: string[], extra: DeepPartial<ContainerConfig> = {}): Promise<string> {
  const name = `s${++seq}`;
  const { containerId } = await env.d.client.call('CreateContainer', {
    podSandboxId: env.pod.id,
    config: { metadata: { name, attempt: 0 }, image: { image: env.image }, command: cmd, logPath: `${name}/0.log`, ...extra },
    sandboxConfig: env.pod.config,
  });
  await env.d.client.call('StartContainer', { containerId });
  return containerId;
}

test(`exec, attach and port-forward against containers run by the daemon (${TEST_HANDLER})`, { timeout: 240000 }, async (t) => {
  const env = await setUp(t);
  const { d } = env;
  const echo = await run(env, ['sh', '-c', 'while read l; do echo "got:$l"; done'], { stdin: true });
  const server = await run(env, ['nc', '-ll', '-p', '9000', '-e', '/bin/cat']);

  await t.test('Exec over SPDY and WebSocket, with the exit code', async () => {
    const { url } = await d.client.call('Exec', { containerId: echo, cmd: ['sh', '-c', 'cat; echo err >&2; exit 4'], stdin: true, stdout: true, stderr: true });
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/exec\//);
    const r = await spdyExec(url, { stdin: Buffer.from('in\n'), stderr: true });
    assert.equal(r.stdout.toString(), 'in\n');
    assert.equal(r.stderr.toString(), 'err\n');
    assert.equal(JSON.parse(r.error).details.causes[0].message, '4');
    const w = await d.client.call('Exec', { containerId: echo, cmd: ['sh', '-c', 'cat | tr a-z A-Z'], stdin: true, stdout: true });
    const ws = await wsExec(w.url, { stdin: Buffer.from('websocket') });
    assert.equal(ws.stdout.toString(), 'WEBSOCKET');
    // Not `tty`: under gVisor the terminal is the host pty imported into the sandbox,
    // which has no /dev/pts name there (ttyname fails) though it is a terminal.
    const tty = await d.client.call('Exec', { containerId: echo, cmd: ['sh', '-c', 'test -t 0 && test -t 1 && echo is-a-tty'], stdout: true, tty: true });
    assert.match((await spdyExec(tty.url, { tty: true })).stdout.toString(), /^is-a-tty/);
  });

  await t.test('Attach: stdin in, output out; leaving keeps the container running', async () => {
    const { url } = await d.client.call('Attach', { containerId: echo, stdin: true, stdout: true });
    assert.match(await spdyAttachSay(url, 'hello\n', 'got:hello'), /got:hello/);
    await new Promise((r) => setTimeout(r, 300));
    const st = await d.client.call('ContainerStatus', { containerId: echo });
    assert.equal(st.status!.state, 1, 'still running after detach');
  });

  await t.test('PortForward into the pod network over SPDY and tunnelled WebSocket', async () => {
    const { url } = await d.client.call('PortForward', { podSandboxId: env.pod.id, port: [9000] });
    const up = await spdyUpgrade(url, ['portforward.k8s.io']);
    assert.ok(up.ok);
    if (!up.ok) return;
    const c = spdyForward(up.session, 9000, 0);
    c.data.write('ping');
    const got = await new Promise<string>((r) => c.data.once('data', (b: Buffer) => r(b.toString())));
    assert.equal(got, 'ping');
    const refused = spdyForward(up.session, 9009, 1);
    refused.data.end();
    assert.match(await refused.error, /9009/);
    up.session.destroy();

    const again = await d.client.call('PortForward', { podSandboxId: env.pod.id, port: [9000] });
    const { ws } = await wsConnectRaw(again.url, 'SPDY/3.1+portforward.k8s.io');
    const session = new SpdySession(createWebSocketStream(ws), { server: false });
    const c2 = spdyForward(session, 9000, 0);
    c2.data.write('tunnel');
    assert.equal(await new Promise<string>((r) => c2.data.once('data', (b: Buffer) => r(b.toString()))), 'tunnel');
    session.destroy();
  });

  await t.test('bad requests', async () => {
    const code = (p: Promise<unknown>) => p.then(() => 'ok', (e: CriCallError) => e.code);
    assert.equal(await code(d.client.call('Exec', { containerId: 'f'.repeat(64), cmd: ['true'], stdout: true })), status.NOT_FOUND);
    assert.equal(await code(d.client.call('Exec', { containerId: echo, cmd: ['true'] })), status.INVALID_ARGUMENT);
    assert.equal(await code(d.client.call('Exec', { containerId: echo, cmd: ['true'], stdout: true, stderr: true, tty: true })), status.INVALID_ARGUMENT);
    assert.equal(await code(d.client.call('Attach', { containerId: server, stdin: true, stdout: true })), status.FAILED_PRECONDITION);
    await d.client.call('StopContainer', { containerId: server, timeout: 0n });
    assert.equal(await code(d.client.call('Exec', { containerId: server, cmd: ['true'], stdout: true })), status.FAILED_PRECONDITION);
  });
});
