import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import zlib from 'node:zlib';
import { SPDY3_DICTIONARY, SPDY3_DICTIONARY_ID } from '../../src/streams/spdy/dictionary.js';
import {
  encodeFrame,
  FrameDecoder,
  SpdyProtocolError,
  type Frame,
} from '../../src/streams/spdy/frames.js';
import { HeaderCodec, parseBlock } from '../../src/streams/spdy/header-block.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

test('the SPDY/3 dictionary is the protocol one (length, digest, zlib dictionary id)', { timeout: 30000 }, () => {
  assert.equal(SPDY3_DICTIONARY.length, 1423);
  assert.equal(createHash('sha256').update(SPDY3_DICTIONARY).digest('hex'), '51d27341373f923f3cd88e1eb7162aeaa3723d7585ff2399201dc06498407f02');
  assert.equal(SPDY3_DICTIONARY.subarray(0, 11).toString('latin1'), '\0\0\0\x07options');
  assert.equal(SPDY3_DICTIONARY.subarray(-9).toString('latin1'), ',*,enq=0.');
  // A zlib stream made with a preset dictionary names it by its Adler-32 (RFC 1950).
  const block = new HeaderCodec().encode({ a: ['b'] });
  assert.equal(block[1]! & 0x20, 0x20, 'FDICT set');
  assert.equal(block.readUInt32BE(2), 0xe3c6a7c2);
  assert.equal(zlib.deflateSync(Buffer.from('x'), { dictionary: SPDY3_DICTIONARY }).readUInt32BE(2), SPDY3_DICTIONARY_ID, 'zlib names it so too');
});

const vectors: [string, Frame, string][] = [
  ['PING', { type: 'ping', id: 1 }, '80030006 00000004 00000001'],
  ['PING with the top bit', { type: 'ping', id: 0xfffffffe }, '80030006 00000004 fffffffe'],
  ['RST_STREAM cancel', { type: 'rst_stream', streamId: 5, status: 5 }, '80030003 00000008 00000005 00000005'],
  ['GOAWAY', { type: 'goaway', lastGoodStreamId: 7, status: 1 }, '80030007 00000008 00000007 00000001'],
  ['WINDOW_UPDATE', { type: 'window_update', streamId: 3, delta: 65536 }, '80030009 00000008 00000003 00010000'],
  [
    'SETTINGS with two entries',
    { type: 'settings', clear: true, entries: [{ flags: 1, id: 7, value: 65536 }, { flags: 0, id: 4, value: 100 }] },
    '80030004 01000014 00000002 01000007 00010000 00000004 00000064',
  ],
  ['DATA', { type: 'data', streamId: 1, fin: false, data: Buffer.from('hi') }, '00000001 00000002 6869'],
  ['DATA with FIN, empty', { type: 'data', streamId: 0x7fffffff, fin: true, data: Buffer.alloc(0) }, '7fffffff 01000000'],
  [
    'SYN_STREAM fin+unidirectional, priority 7',
    { type: 'syn_stream', streamId: 1, associatedId: 0, priority: 7, slot: 0, fin: true, unidirectional: true, block: hex('aabb') },
    '80030001 0300000c 00000001 00000000 e000 aabb',
  ],
  ['SYN_REPLY', { type: 'syn_reply', streamId: 2, fin: false, block: hex('01') }, '80030002 00000005 00000002 01'],
  ['HEADERS fin', { type: 'headers', streamId: 9, fin: true, block: hex('0102') }, '80030008 01000006 00000009 0102'],
];

test('frames encode to the bytes the SPDY/3 draft lays out, and decode back', { timeout: 30000 }, () => {
  for (const [name, frame, bytes] of vectors) {
    const wire = encodeFrame(frame);
    assert.equal(wire.toString('hex'), hex(bytes).toString('hex'), name);
    const back = new FrameDecoder().push(wire);
    assert.equal(back.length, 1, name);
    assert.deepEqual(back[0], frame, name);
  }
});

test('the decoder reassembles frames split at every byte and splits frames sharing a chunk', { timeout: 30000 }, () => {
  const all = Buffer.concat(vectors.map(([, f]) => encodeFrame(f)));
  const d = new FrameDecoder();
  const got: Frame[] = [];
  for (let i = 0; i < all.length; i++) got.push(...d.push(all.subarray(i, i + 1)));
  assert.deepEqual(got, vectors.map(([, f]) => f));
  assert.equal(d.bufferedBytes, 0);
  assert.deepEqual(new FrameDecoder().push(all), vectors.map(([, f]) => f));
  // A truncated frame waits for the rest rather than inventing one.
  const d2 = new FrameDecoder();
  assert.deepEqual(d2.push(all.subarray(0, 10)), []);
  assert.equal(d2.bufferedBytes, 10);
});

test('malformed frames are protocol errors', { timeout: 30000 }, () => {
  const bad: [string, string, RegExp][] = [
    ['wrong version', '80020006 00000004 00000001', /version 2/],
    ['truncated RST_STREAM payload', '80030003 00000004 00000001', /truncated/],
    ['truncated PING', '80030006 00000002 0001', /truncated/],
    ['SETTINGS count lies', '80030004 00000004 00000003', /3 entries/],
    ['DATA on stream 0', '00000000 00000001 00', /stream 0/],
    ['SYN_STREAM for stream 0', '80030001 0000000a 00000000 00000000 0000', /stream 0/],
  ];
  for (const [name, bytes, re] of bad) {
    assert.throws(() => new FrameDecoder().push(hex(bytes)), (e: Error) => e instanceof SpdyProtocolError && re.test(e.message), name);
  }
  // Oversized frames are refused from their header alone, before buffering them.
  assert.throws(
    () => new FrameDecoder({ maxControlFrameBytes: 1024 }).push(hex('80030001 00100000')),
    (e: Error) => e instanceof SpdyProtocolError && /exceeds/.test(e.message),
  );
  const e = (() => {
    try {
      new FrameDecoder({ maxDataFrameBytes: 10 }).push(hex('00000003 00000100'));
    } catch (err) {
      return err as SpdyProtocolError;
    }
    return undefined;
  })();
  assert.equal(e?.streamId, 3);
  // Unknown control frames (e.g. CREDENTIAL, type 10) are passed up to be ignored.
  assert.deepEqual(new FrameDecoder().push(hex('8003000a 00000002 0000')), [{ type: 'unknown', frameType: 10 }]);
});

/** What a real zlib peer (Go's compress/zlib, here Node's) sends: blocks sync-flushed on one stream. */
async function zlibPeerBlocks(blocks: Buffer[], opts: zlib.ZlibOptions = {}): Promise<Buffer[]> {
  const d = zlib.createDeflate({ dictionary: SPDY3_DICTIONARY, ...opts });
  const out: Buffer[] = [];
  for (const b of blocks) {
    const chunks: Buffer[] = [];
    const onData = (c: Buffer) => chunks.push(c);
    d.on('data', onData);
    d.write(b);
    await new Promise<void>((r) => d.flush(zlib.constants.Z_SYNC_FLUSH, () => r()));
    await new Promise((r) => setImmediate(r));
    d.off('data', onData);
    out.push(Buffer.concat(chunks));
  }
  d.close();
  return out;
}

const nv = (h: Record<string, string>) => new HeaderCodec().encode(Object.fromEntries(Object.entries(h).map(([k, v]) => [k, [v]])));

test('header blocks we send decode with zlib and the SPDY dictionary, block by block', { timeout: 30000 }, () => {
  const client = new HeaderCodec();
  const blocks: Record<string, string[]>[] = [{ streamtype: ['error'] }, { streamtype: ['stdout'], port: ['80'], requestid: ['0'] }, { multi: ['a', 'b', ''] }];
  const wire = blocks.map((b) => client.encode(b));
  const first = zlib.inflateSync(wire[0]!, { dictionary: SPDY3_DICTIONARY, finishFlush: zlib.constants.Z_SYNC_FLUSH });
  assert.equal(
    first.toString('hex'),
    '00000001' + '0000000a' + Buffer.from('streamtype').toString('hex') + '00000005' + Buffer.from('error').toString('hex'),
  );
  const all = zlib.inflateSync(Buffer.concat(wire), { dictionary: SPDY3_DICTIONARY, finishFlush: zlib.constants.Z_SYNC_FLUSH });
  let off = 0;
  for (const b of blocks) {
    const h = parseBlock(all.subarray(off, off + expectedRawLength(b)));
    assert.deepEqual({ ...h }, b);
    off += expectedRawLength(b);
  }
  assert.equal(off, all.length);
  // And our own decoder reads them back in order.
  const server = new HeaderCodec();
  for (let i = 0; i < blocks.length; i++) assert.deepEqual({ ...server.decode(wire[i]!) }, blocks[i]);
  // A big block spans several stored blocks (64 KiB − 1 each).
  const big = { v: ['y'.repeat(150_000)] };
  assert.deepEqual({ ...new HeaderCodec({ maxBlockBytes: 1 << 20 }).decode(new HeaderCodec().encode(big)) }, big);
});

function expectedRawLength(h: Record<string, string[]>): number {
  let n = 4;
  for (const [k, v] of Object.entries(h)) n += 8 + Buffer.byteLength(k) + Buffer.byteLength(v.join('\0'));
  return n;
}

test('header blocks compressed by a real zlib peer decode, with back-references across blocks', { timeout: 30000 }, async () => {
  const raws = [
    nv({ streamtype: 'error', 'x-stream-protocol-version': 'v4.channel.k8s.io' }),
    nv({ streamtype: 'stdout', 'x-stream-protocol-version': 'v4.channel.k8s.io' }),
    nv({ streamtype: 'stdin', 'content-type': 'text/plain', 'user-agent': 'accept-encoding gzip,deflate' }),
  ].map((b) => zlib.inflateSync(b, { dictionary: SPDY3_DICTIONARY, finishFlush: zlib.constants.Z_SYNC_FLUSH }));
  for (const opts of [
    { level: 9 },
    { level: 1 },
    { level: 0 },
    { strategy: zlib.constants.Z_FIXED },
    { strategy: zlib.constants.Z_HUFFMAN_ONLY },
  ]) {
    const wire = await zlibPeerBlocks(raws, opts);
    const codec = new HeaderCodec();
    for (let i = 0; i < raws.length; i++) {
      const h = codec.decode(wire[i]!);
      assert.deepEqual(h, parseBlock(raws[i]!), JSON.stringify(opts));
    }
    if (opts.level === 9) {
      assert.ok(wire[1]!.length < raws[1]!.length / 2, 'the second block refers back to the first');
      // Out of order, the shared context is missing: a fresh codec cannot read block 2.
      assert.throws(() => new HeaderCodec().decode(wire[1]!), SpdyProtocolError);
    }
  }
  // Larger, varied data through the inflater (dynamic Huffman codes, long matches).
  const text = Buffer.from(Array.from({ length: 3000 }, (_, i) => `k${i % 97}:${(i * 7919) % 1000} `).join(''));
  const one = await zlibPeerBlocks([text.subarray(0, 10000), text.subarray(10000)], { level: 6 });
  const { ZlibStreamInflater } = await import('../../src/streams/spdy/inflate.js');
  const inf = new ZlibStreamInflater(SPDY3_DICTIONARY);
  assert.deepEqual(Buffer.concat([inf.inflate(one[0]!, 1 << 20), inf.inflate(one[1]!, 1 << 20)]), text);
});

test('header blocks: names must be lowercase and unique; counts and lengths must fit; size is bounded', { timeout: 30000 }, () => {
  const pair = (n: string, v: string) => {
    const nb = Buffer.from(n);
    const vb = Buffer.from(v);
    const b = Buffer.alloc(8 + nb.length + vb.length);
    b.writeUInt32BE(nb.length, 0);
    nb.copy(b, 4);
    b.writeUInt32BE(vb.length, 4 + nb.length);
    vb.copy(b, 8 + nb.length);
    return b;
  };
  const block = (count: number, ...pairs: Buffer[]) => {
    const c = Buffer.alloc(4);
    c.writeUInt32BE(count);
    return Buffer.concat([c, ...pairs]);
  };
  assert.deepEqual({ ...parseBlock(block(1, pair('a', 'x\0y'))) }, { a: ['x', 'y'] });
  assert.throws(() => parseBlock(block(1, pair('Upper', 'x'))), /lowercase/);
  assert.throws(() => parseBlock(block(2, pair('a', 'x'), pair('a', 'y'))), /twice/);
  assert.throws(() => parseBlock(block(1000000, pair('a', 'x'))), /cannot fit/);
  assert.throws(() => parseBlock(block(1, pair('a', 'x')).subarray(0, 12)), /truncated/);
  assert.throws(() => parseBlock(block(1, pair('', 'x'))), /empty/);
  assert.throws(() => parseBlock(Buffer.concat([block(1, pair('a', 'x')), Buffer.from([0])])), /after the last pair/);
  assert.throws(() => parseBlock(Buffer.alloc(2)), /pair count/);
  // A block that inflates past the bound is refused (a zip bomb costs nothing).
  const bomb = zlib.deflateSync(Buffer.alloc(200_000, 'x'), { dictionary: SPDY3_DICTIONARY, finishFlush: zlib.constants.Z_SYNC_FLUSH });
  assert.ok(bomb.length < 2000);
  assert.throws(() => new HeaderCodec({ maxBlockBytes: 64 * 1024 }).decode(bomb), /past 65536 bytes/);
  assert.throws(() => new HeaderCodec().decode(Buffer.from('garbage that is not zlib')), /cannot be decompressed/);
  assert.throws(() => new HeaderCodec().decode(zlib.deflateSync(Buffer.from('x'), { dictionary: Buffer.from('other') })), /dictionary/);
  const good = nv({ a: 'b' });
  assert.throws(() => new HeaderCodec().decode(good.subarray(0, good.length - 3)), /ends inside|truncated/);
});

test('the decompressed-size bound: exactly the bound passes, one byte more is refused, a bomb is stopped early', { timeout: 30000 }, async () => {
  const { ZlibStreamInflater } = await import('../../src/streams/spdy/inflate.js');
  const sync = { dictionary: SPDY3_DICTIONARY, finishFlush: zlib.constants.Z_SYNC_FLUSH };
  // The bound is on each block's output, whatever the chunking inside the inflater.
  for (const size of [1, 1000, 4096, 65536, 100_000]) {
    const block = zlib.deflateSync(Buffer.alloc(size, 'z'), sync);
    assert.equal(new ZlibStreamInflater(SPDY3_DICTIONARY).inflate(block, size).length, size);
    assert.throws(() => new ZlibStreamInflater(SPDY3_DICTIONARY).inflate(block, size - 1), new RegExp(`past ${size - 1} bytes`));
  }
  // 250 MiB squeezed into one header block (the first 255 KiB of its stream, under the
  // 256 KiB control frame limit): refused without ever holding more than the bound.
  const bomb = zlib.deflateSync(Buffer.alloc(250 << 20), { ...sync, level: 9 }).subarray(0, 255 << 10);
  const before = process.memoryUsage();
  const inf = new ZlibStreamInflater(SPDY3_DICTIONARY);
  assert.throws(() => inf.inflate(bomb, 64 * 1024), /past 65536 bytes/);
  const after = process.memoryUsage();
  assert.ok(after.arrayBuffers - before.arrayBuffers < 32 << 20, `array buffers grew by ${after.arrayBuffers - before.arrayBuffers}`);
  // The shared context is lost: the connection cannot go on.
  assert.throws(() => inf.inflate(zlib.deflateSync(Buffer.from('x'), sync), 1024), /unusable/);
  // Blocks each within the bound may add up to any amount over a connection.
  const d = new ZlibStreamInflater(SPDY3_DICTIONARY);
  const blocks = await zlibPeerBlocks(Array.from({ length: 20 }, () => Buffer.alloc(60_000, 'q')), { level: 9 });
  for (const b of blocks) assert.equal(d.inflate(b, 64 * 1024).length, 60_000);
});

// Three SYN_STREAMs as Go's SPDY framer (moby/spdystream, used by kubelet, crictl and
// client-go) writes them: one zlib stream across the frames, each block sync-flushed.
const GO_SYN_STREAMS =
  '80030001000000290000000100000000000078f9e3c6a7c26260606004a7b392a2d4c45c6851c29a0a0a6800000000ffff' +
  '800300010000001900000003000000000000c22ac5565c92925f5a02000000ffff' +
  '800300010100002f0000000500000000000002a55548b15d04ce21160616060c0c0c9c459068ce04257f46030cdda0322a11000000ffff';

test('known vector: SYN_STREAMs written by the Go client decode in order', { timeout: 30000 }, () => {
  const frames = new FrameDecoder().push(hex(GO_SYN_STREAMS));
  assert.equal(frames.length, 3);
  const codec = new HeaderCodec();
  const got = frames.map((f) => {
    assert.equal(f.type, 'syn_stream');
    if (f.type !== 'syn_stream') return {};
    return { id: f.streamId, fin: f.fin, headers: { ...codec.decode(f.block) } };
  });
  assert.deepEqual(got, [
    { id: 1, fin: false, headers: { streamtype: ['error'] } },
    { id: 3, fin: false, headers: { streamtype: ['stdout'] } },
    { id: 5, fin: true, headers: { port: ['8080'], requestid: ['0'], streamtype: ['data'] } },
  ]);
});

test('known vector: our header blocks are zlib stored blocks, each ending with the sync-flush marker', { timeout: 30000 }, () => {
  const codec = new HeaderCodec();
  // zlib header with FDICT and the dictionary id, a stored block with the 4-byte
  // empty name/value block, then the empty stored block a Z_SYNC_FLUSH ends with.
  assert.equal(codec.encode({}).toString('hex'), '7820e3c6a7c2' + '000400fbff00000000' + '000000ffff');
  const second = codec.encode({ a: ['b'] });
  assert.equal(second.toString('hex'), '000e00f1ff' + '00000001' + '0000000161' + '0000000162' + '000000ffff');
  const frame = encodeFrame({ type: 'syn_reply', streamId: 1, fin: false, block: new HeaderCodec().encode({}) });
  assert.equal(frame.toString('hex'), '80030002000000180000000178' + '20e3c6a7c2000400fbff00000000000000ffff');
});
