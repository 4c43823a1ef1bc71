import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import pino from 'pino';
import WebSocket, { createWebSocketStream } from 'ws';
import { StreamServer, type StreamBackends, type StreamRequest } from '../../src/streams/stream-server.js';
import { TokenStore } from '../../src/streams/token-store.js';
import type { RemoteCommandIO, SessionResult, TerminalSize } from '../../src/core/remote-io.js';
import { SpdySession } from '../../src/streams/spdy/session.js';
import { spdyExec, spdyForward, spdyUpgrade } from '../helpers/spdy-client.js';
import { wsConnectRaw, wsExec } from '../helpers/ws-client.js';
import { CricketError } from '../../src/core/errors.js';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { negotiate, ResizeParser } from '../../src/streams/protocols.js';

const log = pino({ level: 'silent' });

/**
 * A fake container: `cat` upper-cases stdin to stdout, `exit N` fails with N,
 * `big N` writes N bytes, `sizes` reports the terminal sizes it saw, `hang` waits for
 * the client to leave.
 */
function fakeBackends(seen: { sizes: TerminalSize[]; aborted: number; dials: number[]; written?: number }): StreamBackends {
  return {
    async run(_log, req, io: RemoteCommandIO): Promise<SessionResult> {
      assert.equal(req.kind, 'exec');
      const cmd = req.kind === 'exec' ? req.cmd : [];
      io.onResize((s) => seen.sizes.push(s));
      // Counted only while the command runs: an abort after it ended means nothing.
      const onAbort = () => seen.aborted++;
      io.signal.addEventListener('abort', onAbort);
      try {
        return await command(cmd, io);
      } finally {
        io.signal.removeEventListener('abort', onAbort);
      }
    },
    async dial(_log, _req, conn) {
      seen.dials.push(conn.port);
      if (conn.port === 1) return conn.fail('nothing listens on port 1');
      if (conn.port === 7) {
        // The echo service: every chunk straight back.
        conn.data.on('data', (b: Buffer) => conn.data.write(b));
        await once(conn.data, 'end');
        return;
      }
      // An echo server that answers once the client half-closes, then closes.
      const parts: Buffer[] = [];
      conn.data.on('data', (b: Buffer) => parts.push(b));
      await once(conn.data, 'end');
      conn.data.end(Buffer.concat([Buffer.from(`port ${conn.port}: `), Buffer.concat(parts)]));
    },
  };
  async function command(cmd: readonly string[], io: RemoteCommandIO): Promise<SessionResult> {
      switch (cmd[0]) {
        case 'cat': {
          for await (const b of io.stdin!) if (!io.stdout!.write(Buffer.from(b.toString().toUpperCase()))) await once(io.stdout!, 'drain');
          io.stderr?.write('done\n');
          return { ok: true };
        }
        case 'exit':
          return { exitCode: Number(cmd[1]) };
        case 'big': {
          const chunk = Buffer.alloc(64 * 1024, 'x');
          for (let n = Number(cmd[1]); n > 0 && !io.signal.aborted; n -= chunk.length) {
            seen.written = (seen.written ?? 0) + Math.min(n, chunk.length);
            if (!io.stdout!.write(chunk.subarray(0, Math.min(n, chunk.length)))) {
              // Like a process blocked on a full pipe: it moves on when drained, and a
              // dead stream leaves it blocked until it is killed (the abort).
              await new Promise<void>((r) => {
                io.stdout!.once('drain', r);
                io.signal.addEventListener('abort', () => r(), { once: true });
              });
            }
          }
          return { ok: true };
        }
        case 'sizes':
          await new Promise((r) => setTimeout(r, 200));
          io.stdout!.write(JSON.stringify(seen.sizes));
          return { ok: true };
        case 'hang':
          await new Promise((r) => io.signal.addEventListener('abort', r));
          return { ok: true };
        default:
          return { error: `no such command ${cmd[0]}` };
      }
  }
}

async function setup(t: { after: (fn: () => Promise<void> | void) => void }) {
  const tokens = new TokenStore<StreamRequest>({ ttlMs: 60_000, max: 100 });
  const seen = { sizes: [] as TerminalSize[], aborted: 0, dials: [] as number[], written: 0 };
  const server = new StreamServer(log, tokens, fakeBackends(seen), { address: '127.0.0.1', port: 0, tlsCert: undefined, tlsKey: undefined });
  await server.listen();
  t.after(() => server.close());
  const exec = (cmd: string[], o: Partial<{ stdin: boolean; stdout: boolean; stderr: boolean; tty: boolean }> = {}) =>
    server.url('exec', tokens.issue({ kind: 'exec', containerId: 'c', cmd, stdin: false, stdout: true, stderr: false, tty: false, ...o }));
  const pf = (ports: number[]) => server.url('portforward', tokens.issue({ kind: 'portforward', podSandboxId: 'p', ports }));
  return { server, tokens, seen, exec, pf };
}

test('URLs are absolute, tokens single-use; unknown, used or mismatched tokens are 404 and run nothing', { timeout: 60000 }, async (t) => {
  const { exec, seen, server } = await setup(t);
  const url = exec(['exit', '0']);
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/exec\/[A-Za-z0-9_-]{43}$/);
  const first = await spdyExec(url);
  assert.equal(first.error, '{"metadata":{},"status":"Success"}');
  const again = await spdyUpgrade(url, ['v4.channel.k8s.io']);
  assert.equal(again.ok, false);
  assert.equal(!again.ok && again.status, 404);
  const wrongKind = url.replace('/exec/', '/attach/');
  const r = await spdyUpgrade(exec(['exit', '0']).replace('/exec/', '/attach/'), ['v4.channel.k8s.io']);
  assert.equal(!r.ok && r.status, 404);
  const unknown = await spdyUpgrade(wrongKind.replace(/[^/]+$/, 'A'.repeat(43)), ['v4.channel.k8s.io']);
  assert.equal(!unknown.ok && unknown.status, 404);
  // A plain GET without an upgrade is refused without spending the token.
  const live = exec(['exit', '0']);
  const plain = await fetch(live);
  assert.equal(plain.status, 400);
  assert.equal((await spdyExec(live)).error, '{"metadata":{},"status":"Success"}');
  assert.equal(seen.aborted, 0);
  assert.equal(server.activeConnections >= 0, true);
});

test('token store: expiry and the bound (ResourceExhausted)', { timeout: 60000 }, () => {
  let now = 1000;
  const s = new TokenStore<number>({ ttlMs: 500, max: 2, now: () => now });
  const a = s.issue(1);
  s.issue(2);
  assert.throws(() => s.issue(3), (e: CricketError) => e.code === 'ResourceExhausted');
  now += 500;
  assert.equal(s.consume(a), undefined, 'expired');
  const c = s.issue(3);
  assert.equal(s.consume(c), 3);
  assert.equal(s.consume(c), undefined, 'used');
  assert.notEqual(s.issue(4), s.issue(5));
});

test('unknown SPDY or WebSocket sub-protocols get 403 listing what we accept', { timeout: 60000 }, async (t) => {
  const { exec } = await setup(t);
  const r = await spdyUpgrade(exec(['exit', '0']), ['v9.channel.k8s.io']);
  assert.equal(r.ok, false);
  if (!r.ok) {
    assert.equal(r.status, 403);
    assert.match(String(r.headers['x-accepted-stream-protocol-versions']), /v4\.channel\.k8s\.io/);
    assert.match(r.body, /v9\.channel\.k8s\.io/);
  }
  await assert.rejects(wsExec(exec(['exit', '0']), { protocols: ['v9.channel.k8s.io'] }), /403/);
});

test('SPDY v4 exec: stdin to stdout, stderr, exit codes as NonZeroExitCode, errors as Failure', { timeout: 60000 }, async (t) => {
  const { exec } = await setup(t);
  const r = await spdyExec(exec(['cat'], { stdin: true, stderr: true }), { stdin: Buffer.from('hello'), stderr: true });
  assert.equal(r.protocol, 'v4.channel.k8s.io');
  assert.equal(r.stdout.toString(), 'HELLO');
  assert.equal(r.stderr.toString(), 'done\n');
  const failed = await spdyExec(exec(['exit', '7']));
  const st = JSON.parse(failed.error);
  assert.equal(st.status, 'Failure');
  assert.equal(st.reason, 'NonZeroExitCode');
  assert.deepEqual(st.details.causes, [{ reason: 'ExitCode', message: '7' }]);
  const bad = JSON.parse((await spdyExec(exec(['nope']))).error);
  assert.equal(bad.status, 'Failure');
  assert.match(bad.message, /no such command nope/);
  // Older protocols carry text on the error stream.
  const v2 = await spdyExec(exec(['exit', '3']), { protocols: ['v2.channel.k8s.io'] });
  assert.equal(v2.protocol, 'v2.channel.k8s.io');
  assert.match(v2.error, /non-zero exit code.*3/);
});

test('SPDY exec output is not held at the 64 KiB window: 20 MB with no WINDOW_UPDATE', { timeout: 60000 }, async (t) => {
  const { exec } = await setup(t);
  let n = 0;
  const r = await spdyExec(exec(['big', String(20_000_000)]), { onStdout: (b) => (n += b.length) });
  assert.equal(n, 20_000_000);
  assert.equal(r.stdout.length, 20_000_000);
});

test('TTY resize messages on the SPDY v4 resize stream reach the session', { timeout: 60000 }, async (t) => {
  const { exec } = await setup(t);
  const r = await spdyExec(exec(['sizes'], { tty: true }), { tty: true, resize: [{ width: 80, height: 24 }, { width: 100, height: 50 }] });
  assert.deepEqual(JSON.parse(r.stdout.toString()), [{ width: 80, height: 24 }, { width: 100, height: 50 }]);
});

test('WebSocket v5 and v4.base64: stdin close signal, output, status, normal close', { timeout: 60000 }, async (t) => {
  const { exec } = await setup(t);
  const r = await wsExec(exec(['cat'], { stdin: true, stderr: true }), { stdin: Buffer.from('abc') });
  assert.equal(r.protocol, 'v5.channel.k8s.io');
  assert.equal(r.stdout.toString(), 'ABC');
  assert.equal(r.stderr.toString(), 'done\n');
  assert.equal(r.error, '{"metadata":{},"status":"Success"}');
  assert.equal(r.closeCode, 1000);
  const e = await wsExec(exec(['exit', '4']), { protocols: ['v4.base64.channel.k8s.io'], closeStdin: false });
  assert.equal(e.protocol, 'v4.base64.channel.k8s.io');
  assert.equal(JSON.parse(e.error).details.causes[0].message, '4');
});

test('a client that goes away aborts its session; others carry on', { timeout: 60000 }, async (t) => {
  const { exec, seen } = await setup(t);
  const up = await spdyUpgrade(exec(['hang']), ['v4.channel.k8s.io']);
  assert.ok(up.ok);
  if (!up.ok) return;
  up.session.openStream({ streamtype: ['error'] }).end();
  up.session.openStream({ streamtype: ['stdout'] }).end();
  await new Promise((r) => setTimeout(r, 100));
  const before = seen.aborted;
  up.socket.destroy();
  for (let i = 0; i < 50 && seen.aborted === before; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(seen.aborted, before + 1);
  assert.equal((await spdyExec(exec(['exit', '0']))).error, '{"metadata":{},"status":"Success"}');
});

test('garbage after the SPDY upgrade closes that connection only', { timeout: 60000 }, async (t) => {
  const { exec, server } = await setup(t);
  const url = new URL(exec(['hang']));
  const s = net.connect(Number(url.port), url.hostname);
  s.write(`GET ${url.pathname} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n`);
  let got = '';
  s.on('data', (b: Buffer) => (got += b.toString('latin1')));
  await new Promise((r) => setTimeout(r, 100));
  assert.match(got, /^HTTP\/1\.1 101 /);
  s.write(Buffer.from('\xff\xff\xff\xff\xff\xff\xff\xffjunk', 'latin1'));
  await once(s, 'close');
  assert.equal((await spdyExec(exec(['exit', '0']))).error, '{"metadata":{},"status":"Success"}');
  assert.ok(server.activeConnections <= 1);
});

test('port-forward over SPDY: pairs by port and requestid, errors on the error stream', { timeout: 60000 }, async (t) => {
  const { pf, seen } = await setup(t);
  const up = await spdyUpgrade(pf([8080]), ['portforward.k8s.io']);
  assert.ok(up.ok);
  if (!up.ok) return;
  t.after(() => up.session.destroy());
  assert.equal(up.protocol, 'portforward.k8s.io');
  const a = spdyForward(up.session, 8080, 0);
  const b = spdyForward(up.session, 9090, 1);
  const bad = spdyForward(up.session, 1, 2);
  a.data.end('one');
  b.data.end('two');
  const read = (s: NodeJS.ReadableStream) => new Promise<string>((r) => {
    let x = '';
    s.on('data', (c: Buffer) => (x += c));
    s.on('end', () => r(x));
  });
  assert.equal(await read(a.data), 'port 8080: one');
  assert.equal(await read(b.data), 'port 9090: two');
  assert.equal(await a.error, '');
  assert.equal(await bad.error, 'nothing listens on port 1');
  assert.deepEqual(seen.dials.sort(), [1, 8080, 9090]);
});

test('port-forward over WebSocket: SPDY tunnelled in binary messages (crictl --transport websocket)', { timeout: 60000 }, async (t) => {
  const { pf } = await setup(t);
  const { ws, protocol } = await wsConnectRaw(pf([80]), 'SPDY/3.1+portforward.k8s.io');
  assert.equal(protocol, 'SPDY/3.1+portforward.k8s.io');
  const session = new SpdySession(createWebSocketStream(ws), { server: false });
  t.after(() => session.destroy());
  const c = spdyForward(session, 80, 0);
  c.data.end('tunnelled');
  let x = '';
  c.data.on('data', (b: Buffer) => (x += b));
  await once(c.data, 'end');
  assert.equal(x, 'port 80: tunnelled');
});

test('port-forward over the WebSocket channel protocol: port header, data both ways', { timeout: 60000 }, async (t) => {
  const { pf } = await setup(t);
  const ws = new WebSocket(pf([81]).replace(/^http/, 'ws') + '?port=7', ['v4.channel.k8s.io']);
  const msgs: Buffer[] = [];
  ws.on('message', (m: Buffer) => msgs.push(m));
  await once(ws, 'open');
  ws.send(Buffer.from([0, ...Buffer.from('echo me')]));
  for (let i = 0; i < 100 && msgs.length < 3; i++) await new Promise((r) => setTimeout(r, 10));
  // Channel 0 (data) and 1 (error) each start with the port, little-endian; then the echo.
  assert.deepEqual(msgs.slice(0, 2).map((m) => [...m]), [[0, 7, 0], [1, 7, 0]]);
  assert.equal(Buffer.concat(msgs.slice(2).map((m) => m.subarray(1))).toString(), 'echo me');
  assert.ok(msgs.slice(2).every((m) => m[0] === 0));
  ws.close();
  await once(ws, 'close');
});

test('negotiation takes the client\'s order; resize messages parse as a JSON stream', () => {
  assert.equal(negotiate(['v4.channel.k8s.io', 'v3.channel.k8s.io'], ['v3.channel.k8s.io', 'v4.channel.k8s.io']), 'v4.channel.k8s.io');
  assert.equal(negotiate(['v9.channel.k8s.io, v2.channel.k8s.io'], ['v4.channel.k8s.io', 'v2.channel.k8s.io']), 'v2.channel.k8s.io');
  assert.equal(negotiate([], ['v4.channel.k8s.io']), undefined);
  const p = new ResizeParser();
  assert.deepEqual(p.push('{"Width":80,"Hei'), []);
  assert.deepEqual(p.push('ght":24}\n{"Width":100,"Height":50}{"Width":1,'), [{ width: 80, height: 24 }, { width: 100, height: 50 }]);
  assert.deepEqual(p.push('"Height":2}'), [{ width: 1, height: 2 }]);
  assert.throws(() => new ResizeParser().push('{"Width":-1,"Height":2}'), /bad terminal size/);
  assert.throws(() => new ResizeParser().push('{' + ' '.repeat(5000)), /too long/);
});

test('TLS: with a certificate the URLs are https and sessions work over it', { timeout: 60000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cricket-tls-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
    '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
  const tokens = new TokenStore<StreamRequest>({ ttlMs: 60_000, max: 10 });
  const seen = { sizes: [] as TerminalSize[], aborted: 0, dials: [] as number[] };
  const server = new StreamServer(log, tokens, fakeBackends(seen), { address: '127.0.0.1', port: 0, tlsCert: join(dir, 'cert.pem'), tlsKey: join(dir, 'key.pem') });
  await server.listen();
  t.after(() => server.close());
  const url = server.url('exec', tokens.issue({ kind: 'exec', containerId: 'c', cmd: ['exit', '9'], stdin: false, stdout: true, stderr: false, tty: false }));
  assert.match(url, /^https:\/\/127\.0\.0\.1:\d+\/exec\//);
  const r = await spdyExec(url);
  assert.equal(JSON.parse(r.error).details.causes[0].message, '9');
});

test('a busy port is a clear FailedPrecondition; past the session cap new sessions get 503', { timeout: 60000 }, async (t) => {
  const { server: first } = await setup(t);
  const port = Number(new URL(first.url('exec', 'x')).port);
  const tokens = new TokenStore<StreamRequest>({ ttlMs: 60_000, max: 10 });
  const seen = { sizes: [] as TerminalSize[], aborted: 0, dials: [] as number[] };
  const clash = new StreamServer(log, tokens, fakeBackends(seen), { address: '127.0.0.1', port, tlsCert: undefined, tlsKey: undefined });
  await assert.rejects(clash.listen(), (e: CricketError) => e.code === 'FailedPrecondition' && /cannot listen/.test(e.message));
  const capped = new StreamServer(log, tokens, fakeBackends(seen), { address: '127.0.0.1', port: 0, tlsCert: undefined, tlsKey: undefined, maxSessions: 1 });
  await capped.listen();
  t.after(() => capped.close());
  const issue = (cmd: string[]) => capped.url('exec', tokens.issue({ kind: 'exec', containerId: 'c', cmd, stdin: false, stdout: true, stderr: false, tty: false }));
  const held = await spdyUpgrade(issue(['hang']), ['v4.channel.k8s.io']);
  assert.ok(held.ok);
  const refused = await spdyUpgrade(issue(['exit', '0']), ['v4.channel.k8s.io']);
  assert.equal(!refused.ok && refused.status, 503);
  if (held.ok) held.session.destroy();
});

test('a client that stops reading holds back its own process, not the daemon or other sessions', { timeout: 60000 }, async (t) => {
  for (const transport of ['spdy', 'websocket'] as const) {
    const { exec, seen } = await setup(t);
    const url = exec(['big', String(500e6)]);
    let stop: () => void;
    if (transport === 'spdy') {
      const up = await spdyUpgrade(url, ['v4.channel.k8s.io']);
      assert.ok(up.ok);
      if (!up.ok) return;
      up.session.openStream({ streamtype: ['error'] }).end();
      up.session.openStream({ streamtype: ['stdout'] }).end();
      // Stop reading: the kernel buffers fill and the server must wait, not buffer.
      up.socket.pause();
      stop = () => up.session.destroy();
    } else {
      const ws = new WebSocket(url.replace(/^http/, 'ws'), ['v5.channel.k8s.io']);
      await once(ws, 'open');
      (ws as unknown as { _socket: import('node:net').Socket })._socket.pause();
      stop = () => ws.terminate();
    }
    for (let i = 0; i < 20 && (seen.written ?? 0) === 0; i++) await new Promise((r) => setTimeout(r, 25));
    await new Promise((r) => setTimeout(r, 400));
    // Other sessions are served meanwhile.
    assert.equal((await spdyExec(exec(['exit', '0']))).error, '{"metadata":{},"status":"Success"}');
    const written = seen.written ?? 0;
    assert.ok(written > 0, 'the stalled session started');
    assert.ok(written < 64e6, `${transport}: only socket buffers' worth was produced (${written} bytes), not all 500 MB`);
    const before = seen.aborted;
    stop();
    for (let i = 0; i < 50 && seen.aborted === before; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(seen.aborted, before + 1, `${transport}: the stalled session ends when its client goes`);
  }
});

test('input a finished process never reads is discarded; the session still completes', { timeout: 60000 }, async (t) => {
  const { exec } = await setup(t);
  async function* lots(): AsyncGenerator<Buffer> {
    for (let i = 0; i < 200; i++) yield Buffer.alloc(256 * 1024, 1);
  }
  const r = await spdyExec(exec(['exit', '6'], { stdin: true }), { stdin: lots() });
  assert.equal(JSON.parse(r.error).details.causes[0].message, '6');
});
