import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import zlib from 'node:zlib';
import { SpdySession, type SpdyStream } from '../../src/streams/spdy/session.js';
import { SPDY3_DICTIONARY } from '../../src/streams/spdy/dictionary.js';
import { encodeFrame, FrameDecoder, RstStatus, type Frame } from '../../src/streams/spdy/frames.js';

async function pair(serverOpts: Partial<ConstructorParameters<typeof SpdySession>[1]> = {}) {
  const srv = net.createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as net.AddressInfo).port;
  const accepted = once(srv, 'connection') as Promise<[net.Socket]>;
  const c = net.connect(port, '127.0.0.1');
  await once(c, 'connect');
  const [s] = await accepted;
  srv.close();
  const server = new SpdySession(s, { server: true, ...serverOpts });
  const client = new SpdySession(c, { server: false });
  return { server, client, rawClient: c, rawServer: s };
}

// Not `for await`: that destroys a Duplex when its readable side ends, which would
// cut off the half-closed writable side we still answer on.
const collect = (s: NodeJS.ReadableStream) =>
  new Promise<Buffer>((resolve, reject) => {
    const parts: Buffer[] = [];
    s.on('data', (b: Buffer) => parts.push(b));
    s.once('end', () => resolve(Buffer.concat(parts)));
    s.once('error', reject);
  });

test('streams carry headers, data both ways and half-closes; output never waits for WINDOW_UPDATE', { timeout: 30000 }, async (t) => {
  const { server, client } = await pair();
  t.after(() => {
    client.destroy();
    server.destroy();
  });
  server.on('stream', (st: SpdyStream) => {
    st.reply({});
    if (st.headers['streamtype']?.[0] === 'stdout') {
      // 4 MiB at once: far past SPDY's 64 KiB initial window; the client sends no WINDOW_UPDATE.
      st.end(Buffer.alloc(4 << 20, 7));
    } else {
      void collect(st).then((b) => st.end(Buffer.from(`got ${b.length}`)));
    }
  });
  const out = client.openStream({ streamtype: ['stdout'] });
  out.end();
  const replied = once(out, 'reply');
  const got = await collect(out);
  assert.equal(got.length, 4 << 20);
  assert.ok(got.every((x) => x === 7));
  assert.deepEqual({ ...(await replied)[0] }, {});
  const echo = client.openStream({ streamtype: ['stdin'] });
  echo.write('abc');
  echo.end('de');
  assert.equal((await collect(echo)).toString(), 'got 5');
  await client.ping();
});

test('a reset stream ends only itself; too many streams are refused', { timeout: 30000 }, async (t) => {
  const { server, client } = await pair({ maxStreams: 2 });
  t.after(() => {
    client.destroy();
    server.destroy();
  });
  const seen: SpdyStream[] = [];
  server.on('stream', (st: SpdyStream) => seen.push(st));
  const a = client.openStream({ n: ['a'] });
  const b = client.openStream({ n: ['b'] });
  const c = client.openStream({ n: ['c'] });
  const [status] = await once(c, 'reset');
  assert.equal(status, RstStatus.RefusedStream);
  assert.equal(seen.length, 2);
  const closed = once(seen[0]!, 'close');
  a.reset();
  await closed;
  // b still works after a's reset.
  seen[1]!.end('still here');
  assert.equal((await collect(b)).toString(), 'still here');
});

const bombBlock = zlib.deflateSync(Buffer.alloc(100 << 20), { dictionary: SPDY3_DICTIONARY, level: 9, finishFlush: zlib.constants.Z_SYNC_FLUSH });

test('garbage or an oversized header block ends the connection with GOAWAY; other sessions go on', { timeout: 30000 }, async (t) => {
  for (const bad of [
    Buffer.from('\xff\xff\x00\x01 garbage that claims to be a control frame', 'latin1'),
    // A data frame far larger than any client sends is refused from its 8-byte header.
    Buffer.from('00000001 00ffffff'.replace(' ', ''), 'hex'),
    encodeFrame({ type: 'syn_stream', streamId: 1, associatedId: 0, priority: 0, slot: 0, fin: false, unidirectional: false, block: Buffer.from('not zlib at all') }),
    // A header block that inflates to 100 MiB, past the 64 KiB bound.
    encodeFrame({ type: 'syn_stream', streamId: 1, associatedId: 0, priority: 0, slot: 0, fin: false, unidirectional: false, block: bombBlock }),
  ]) {
    const other = await pair();
    t.after(() => {
      other.client.destroy();
      other.server.destroy();
    });
    // Speak raw bytes from the client side so we can read the reply frames.
    const p = await pair();
    p.client.removeAllListeners();
    const errs: Error[] = [];
    p.server.on('protocolError', (e: Error) => errs.push(e));
    p.rawClient.removeAllListeners('data');
    const frames: Frame[] = [];
    const dec = new FrameDecoder();
    p.rawClient.on('data', (b: Buffer) => frames.push(...dec.push(b)));
    const closed = once(p.server, 'close');
    p.rawClient.write(bad);
    await closed;
    assert.equal(errs.length, 1);
    await once(p.rawClient, 'close');
    assert.equal(frames.at(-1)?.type, 'goaway');
    p.rawClient.destroy();
    // The other session is unaffected.
    await other.client.ping();
  }
});

test('PING from the peer is echoed with its id', { timeout: 30000 }, async (t) => {
  const { server, rawClient } = await pair();
  t.after(() => {
    rawClient.destroy();
    server.destroy();
  });
  rawClient.removeAllListeners('data');
  const dec = new FrameDecoder();
  const got = new Promise<Frame>((resolve) => rawClient.on('data', (b: Buffer) => dec.push(b).forEach(resolve)));
  rawClient.write(encodeFrame({ type: 'ping', id: 41 }));
  assert.deepEqual(await got, { type: 'ping', id: 41 });
});
