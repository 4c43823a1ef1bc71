import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import { ContainerState } from '../../src/gen/runtime/v1/api.js';
import type { SpdyStream } from '../../src/streams/spdy/session.js';
import { spdyForward, spdyUpgrade } from '../helpers/spdy-client.js';
import { setUpDurEnv, type DurEnv } from './durability-env.js';

// A streaming client that goes away at any moment takes everything that runs for it
// along: the exec'd process (and its children) in the container, and runc, the TTY
// helper and socat on the host. Through the real daemon, a conmon+runc container in a
// pod with its own network namespace. The daemon's runc is a failpoint wrapper, so
// the window between runc starting the process and writing --pid-file can be held open.

/** Command lines of live processes mentioning `text` (a zombie's is empty). */
function procsMentioning(text: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const cmd = readFileSync(`/proc/${e}/cmdline`, 'utf8');
      if (cmd.includes(text)) out.push(`${e}: ${cmd.split('\0').join(' ').trim()}`);
    } catch {
      // gone
    }
  }
  return out;
}

async function until(cond: () => boolean, what: string, maxMs = 30_000): Promise<void> {
  const deadline = Date.now() + maxMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface Ctx {
  env: DurEnv;
  pod: string;
  ctr: string;
  netns: string;
}

/** How many exec sessions on ctr the daemon has logged as ended. */
function sessionsEnded(c: Ctx): number {
  return c.env.d
    .output()
    .split('\n')
    .filter((l) => l.includes('"exec session ended"') && l.includes(c.ctr)).length;
}

async function execUrl(c: Ctx, cmd: string[], tty: boolean): Promise<string> {
  const r = await c.env.d.client.call('Exec', { containerId: c.ctr, cmd, tty, stdin: false, stdout: true, stderr: false });
  return r.url;
}

/** Opens the session's streams (SPDY v4) and resolves once the server has answered them all: the session is running. */
async function openSpdyExec(url: string, tty: boolean) {
  const up = await spdyUpgrade(url, ['v4.channel.k8s.io']);
  if (!up.ok) throw new Error(`upgrade refused: ${up.status} ${up.body}`);
  const streams = [up.session.openStream({ streamtype: ['error'] }), up.session.openStream({ streamtype: ['stdout'] })];
  if (tty) streams.push(up.session.openStream({ streamtype: ['resize'] }));
  for (const s of streams) s.on('error', () => {});
  streams[0]!.end();
  streams[1]!.end();
  await Promise.all(streams.map((s) => new Promise((r) => s.once('reply', r))));
  return { up, resize: tty ? streams[2]! : undefined };
}

/** Waits until the daemon ends the session (the event), then checks nothing of it is left anywhere. */
async function assertAllGone(c: Ctx, endedBefore: number, marker: string): Promise<void> {
  await until(() => sessionsEnded(c) > endedBefore, 'the daemon ended the exec session');
  const left = procsMentioning(marker);
  if (left.length > 0) {
    // What the failure needs: who they are below, and what the daemon said.
    const about = left.map((l) => {
      const pid = l.split(':')[0]!;
      try {
        const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
        return `${l} [stat ${st.slice(st.lastIndexOf(')') + 2, st.lastIndexOf(')') + 12)}]`;
      } catch {
        return l;
      }
    });
    const said = c.env.d.output().split('\n').filter((x) => x.includes(c.ctr) && /exec/.test(x)).slice(-6);
    assert.fail(`left after the session ended: ${about.join('; ')}\ndaemon: ${said.join('\n')}`);
  }
}

let seq = 0;
function markers(): [string, string] {
  const n = 700000 + randomInt(99999) + 100 * ++seq;
  return [String(n), String(n + 1)];
}

/** A command that runs two sleeps (a child and the command itself), both named by their markers. */
const twoSleeps = (m: [string, string]) => ['sh', '-c', `sleep ${m[0]} & sleep ${m[1]}; wait`];

const running = (m: string) => procsMentioning(`sleep\0${m}\0`).length > 0;

test('streaming clients that vanish take their processes and helpers with them', { timeout: 300_000 }, async (t) => {
  const env = await setUpDurEnv();
  t.after(() => env.cleanup());
  const cfg = env.podConfig('vanish');
  const pod = (await env.d.client.call('RunPodSandbox', { config: cfg })).podSandboxId;
  const ctr = (
    await env.d.client.call('CreateContainer', {
      podSandboxId: pod,
      config: env.ctrConfig('echo', ['nc', '-ll', '-p', '9000', '-e', 'cat']),
      sandboxConfig: cfg,
    })
  ).containerId;
  await env.d.client.call('StartContainer', { containerId: ctr });
  const st = await env.d.client.call('PodSandboxStatus', { podSandboxId: pod, verbose: true });
  const netns = JSON.parse(st.info['info']!).namespaces.network as string;
  const c: Ctx = { env, pod, ctr, netns };
  const holdDir = join(env.dir, 'hold');

  const hold = (release: boolean) => {
    rmSync(holdDir, { recursive: true, force: true });
    mkdirSync(holdDir);
    if (release) writeFileSync(join(holdDir, 'release'), '');
    env.fp.arm('runc', 'exec', `hold-pid-file:${holdDir}`);
  };
  t.after(() => env.fp.disarm('runc'));

  for (const tty of [false, true]) {
    const kind = tty ? 'with a TTY' : 'without a TTY';

    await t.test(`${kind}: the client vanishes after the process started, before runc wrote its pid file`, async () => {
      hold(false);
      const m = markers();
      const before = sessionsEnded(c);
      const { up } = await openSpdyExec(await execUrl(c, twoSleeps(m), tty), tty);
      up.session.on('error', () => {});
      await until(() => running(m[0]) && running(m[1]), 'both sleeps run in the container');
      assert.equal(readdirSync(holdDir).includes('published'), false, 'the pid file is still held back');
      up.socket.destroy();
      await assertAllGone(c, before, m[1]);
    });

    await t.test(`${kind}: the client vanishes after runc wrote its pid file`, async () => {
      hold(true);
      const m = markers();
      const before = sessionsEnded(c);
      const { up } = await openSpdyExec(await execUrl(c, twoSleeps(m), tty), tty);
      up.session.on('error', () => {});
      await until(() => running(m[0]) && running(m[1]) && readdirSync(holdDir).includes('published'), 'both sleeps run and the pid file is written');
      up.socket.destroy();
      await assertAllGone(c, before, m[1]);
    });
  }

  await t.test('with a TTY: the client vanishes before the process started (while the daemon waits for its terminal size)', async () => {
    env.fp.disarm('runc');
    const m = markers();
    const before = sessionsEnded(c);
    // No resize is sent: the daemon waits a moment for the first size before it starts runc.
    const { up } = await openSpdyExec(await execUrl(c, twoSleeps(m), true), true);
    up.session.on('error', () => {});
    up.socket.destroy();
    await assertAllGone(c, before, m[1]);
  });

  await t.test('over WebSocket (v5): the client vanishes after the process started, before the pid file', async () => {
    hold(false);
    const m = markers();
    const before = sessionsEnded(c);
    const url = await execUrl(c, twoSleeps(m), false);
    const ws = new WebSocket(url.replace(/^http/, 'ws'), ['v5.channel.k8s.io']);
    ws.on('error', () => {});
    await new Promise((r) => ws.once('open', r));
    await until(() => running(m[0]) && running(m[1]), 'both sleeps run in the container');
    ws.terminate();
    await assertAllGone(c, before, m[1]);
  });

  await t.test('port-forward: a reset connection and a vanished client leave no socat behind', async () => {
    env.fp.disarm('runc');
    // socat runs in the pod's network namespace: tell ours from anybody else's by it.
    const podNetIno = String(statSync(netns).ino);
    const socats = () =>
      readdirSync('/proc').filter((p) => {
        if (!/^\d+$/.test(p)) return false;
        try {
          return readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'socat' && readlinkSync(`/proc/${p}/ns/net`) === `net:[${podNetIno}]`;
        } catch {
          return false;
        }
      });
    const { url } = await env.d.client.call('PortForward', { podSandboxId: pod, port: [9000] });
    const up = await spdyUpgrade(url, ['portforward.k8s.io']);
    if (!up.ok) throw new Error(`upgrade refused: ${up.status}`);
    up.session.on('error', () => {});
    const echo = async (conn: { data: SpdyStream }, text: string) => {
      const got = new Promise<string>((resolve) => {
        let s = '';
        conn.data.on('data', (b: Buffer) => {
          s += b.toString();
          if (s.includes(text)) resolve(s);
        });
      });
      conn.data.write(text);
      return got;
    };
    const a = spdyForward(up.session, 9000, 1);
    const b = spdyForward(up.session, 9000, 2);
    assert.match(await echo(a, 'one\n'), /one/);
    assert.match(await echo(b, 'two\n'), /two/);
    assert.equal(socats().length, 2, 'one socat per connection');
    // The client resets one connection; the session goes on.
    a.data.reset();
    await until(() => socats().length === 1, 'the reset connection’s socat is gone');
    assert.match(await echo(b, 'still\n'), /still/);
    // The client vanishes.
    up.socket.destroy();
    await until(() => socats().length === 0, 'no socat is left once the client is gone');
  });

  // The container itself was never touched by any of this.
  const s = await env.d.client.call('ContainerStatus', { containerId: ctr });
  assert.equal(s.status!.state, ContainerState.CONTAINER_RUNNING, 'the container still runs');
});
