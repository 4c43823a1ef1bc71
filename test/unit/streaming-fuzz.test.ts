import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import pino from 'pino';
import { StreamServer, type StreamBackends, type StreamRequest } from '../../src/streams/stream-server.js';
import { TokenStore } from '../../src/streams/token-store.js';
import { spdyExec } from '../helpers/spdy-client.js';
import { prng } from '../helpers/prng.js';

// Hostile bytes at the streaming server, seeded so a failure replays: random frames
// after a real SPDY upgrade (some shaped like control frames with random fields),
// random HTTP request heads, and oversized ones. Each connection must end or stay
// harmlessly open; the server never throws (it runs in this process, so a throw
// fails the test run) and still serves a normal exec afterwards.


const backends: StreamBackends = {
  async run(_log, _req, io) {
    io.stdout?.end('ok');
    return { exitCode: 0 };
  },
  async dial(_log, _req, conn) {
    conn.fail('no listener in the fuzz test');
  },
};

function randomFrame(rand: () => number): Buffer {
  const n = (max: number) => Math.floor(rand() * max);
  const bytes = (len: number) => Buffer.from(Array.from({ length: len }, () => n(256)));
  switch (n(4)) {
    case 0:
      return bytes(1 + n(200));
    case 1: {
      // A control frame header (version 3, a real or bogus type) with a lying length.
      const body = bytes(n(64));
      const h = Buffer.alloc(8);
      h.writeUInt16BE(0x8000 | (n(3) === 0 ? n(0x7fff) : 3), 0);
      h.writeUInt16BE(n(3) === 0 ? n(0xffff) : 1 + n(9), 2);
      h.writeUInt32BE(((n(256) << 24) | (n(3) === 0 ? n(0xffffff) : body.length)) >>> 0, 4);
      return Buffer.concat([h, body]);
    }
    case 2: {
      // A data frame for a stream nobody opened.
      const body = bytes(n(100));
      const h = Buffer.alloc(8);
      h.writeUInt32BE(n(0x7fffffff), 0);
      h.writeUInt32BE(((n(2) << 24) | body.length) >>> 0, 4);
      return Buffer.concat([h, body]);
    }
    default:
      // SYN_STREAM with a random (not zlib) header block.
      return Buffer.concat([Buffer.from([0x80, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x20]), bytes(32)]);
  }
}

function exchange(port: number, payload: Buffer, upgrade: string | undefined): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const done = () => {
      clearTimeout(timer);
      s.destroy();
      resolve();
    };
    const timer = setTimeout(done, 150);
    s.on('error', done);
    s.on('close', done);
    s.on('connect', () => {
      if (upgrade) s.write(upgrade);
      s.write(payload);
    });
    s.on('data', () => {});
  });
}

test('random frames after an upgrade and random request heads never break the streaming server', { timeout: 120_000 }, async (t) => {
  const log = pino({ level: 'silent' });
  const tokens = new TokenStore<StreamRequest>({ ttlMs: 60_000, max: 1000 });
  const server = new StreamServer(log, tokens, backends, { address: '127.0.0.1', port: 0, tlsCert: undefined, tlsKey: undefined });
  await server.listen();
  t.after(() => server.close());
  const exec = () => server.url('exec', tokens.issue({ kind: 'exec', containerId: 'c', cmd: ['x'], stdin: false, stdout: true, stderr: false, tty: false }));
  const port = Number(new URL(exec()).port);
  const rand = prng(4242);

  for (let i = 0; i < 150; i++) {
    const url = new URL(exec());
    const head = `POST ${url.pathname} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n`;
    const frames = Buffer.concat(Array.from({ length: 1 + Math.floor(rand() * 4) }, () => randomFrame(rand)));
    await exchange(port, frames, head);
  }
  for (let i = 0; i < 50; i++) {
    const junk = Buffer.from(Array.from({ length: 1 + Math.floor(rand() * 300) }, () => Math.floor(rand() * 256)));
    await exchange(port, junk, i % 2 === 0 ? undefined : 'GET /exec/');
  }
  // A request head far beyond what any client sends.
  await exchange(port, Buffer.from(`GET /exec/x HTTP/1.1\r\nX-Big: ${'a'.repeat(200_000)}\r\n\r\n`), undefined);

  const after = await spdyExec(exec());
  assert.equal(after.stdout.toString(), 'ok');
  assert.match(after.error, /Success/);
});
