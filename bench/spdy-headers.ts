import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import zlib from 'node:zlib';
import { SPDY3_DICTIONARY } from '../src/streams/spdy/dictionary.js';
import { HeaderCodec, type SpdyHeaders } from '../src/streams/spdy/header-block.js';

// SPDY header-block codec figures, in-process (no daemon): decoding the blocks a Go
// client (kubelet, crictl) sends, compressed on one zlib stream per connection and
// sync-flushed per block — here made by Node's zlib, which writes the same format —
// on one long connection and on many short ones; decoding the stored blocks our own
// encoder writes; encoding; how fast a header-block bomb is refused; and the memory a
// connection's codec holds.

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
/** Collects garbage until the counts stop moving (array buffers are freed lazily). */
async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
}

// The streams of an exec (client-go opens error, stdin, stdout, stderr, resize) and of
// a port-forward (data + error per port), as SYN_STREAM header blocks.
const EXEC: SpdyHeaders[] = ['error', 'stdin', 'stdout', 'stderr', 'resize'].map((t) => ({ streamtype: [t] }));
const FORWARD = (req: number): SpdyHeaders[] =>
  ['error', 'data'].map((t) => ({ streamtype: [t], port: ['8080'], requestid: [String(req)] }));
const reply: SpdyHeaders = { ':status': ['200'], 'x-stream-protocol-version': ['v4.channel.k8s.io'] };

function raw(h: SpdyHeaders): Buffer {
  // The uncompressed name/value block, as parseBlock reads it.
  const parts: Buffer[] = [Buffer.alloc(4)];
  parts[0]!.writeUInt32BE(Object.keys(h).length);
  for (const [k, v] of Object.entries(h)) {
    const n = Buffer.from(k);
    const val = Buffer.from(v.join('\0'));
    const nl = Buffer.alloc(4);
    nl.writeUInt32BE(n.length);
    const vl = Buffer.alloc(4);
    vl.writeUInt32BE(val.length);
    parts.push(nl, n, vl, val);
  }
  return Buffer.concat(parts);
}

/** One connection's worth of blocks as a zlib peer writes them: one stream, Z_SYNC_FLUSH each. */
async function peerBlocks(blocks: SpdyHeaders[]): Promise<Buffer[]> {
  const d = zlib.createDeflate({ dictionary: SPDY3_DICTIONARY });
  const out: Buffer[] = [];
  let cur: Buffer[] = [];
  d.on('data', (c: Buffer) => cur.push(c));
  for (const b of blocks) {
    d.write(raw(b));
    await new Promise<void>((r) => d.flush(zlib.constants.Z_SYNC_FLUSH, () => r()));
    await new Promise((r) => setImmediate(r));
    out.push(Buffer.concat(cur));
    cur = [];
  }
  d.close();
  return out;
}

const us = (ns: bigint, n: number) => Number(ns) / 1e3 / n;
function time(fn: () => void): bigint {
  const t0 = process.hrtime.bigint();
  fn();
  return process.hrtime.bigint() - t0;
}
/** Best of five: the figure least disturbed by other work on the machine. */
function best(fn: () => void): bigint {
  let b = -1n;
  for (let i = 0; i < 5; i++) {
    const t = time(fn);
    if (b < 0n || t < b) b = t;
  }
  return b;
}

// 1. One long connection: 20000 blocks (exec and port-forward streams, interleaved).
const LONG = 20_000;
const longHeaders: SpdyHeaders[] = [];
for (let i = 0; longHeaders.length < LONG; i++) longHeaders.push(...(i % 2 ? EXEC : FORWARD(i)));
longHeaders.length = LONG;
const longWire = await peerBlocks(longHeaders);
const wireBytes = longWire.reduce((a, b) => a + b.length, 0);
const rawBytes = longHeaders.reduce((a, h) => a + raw(h).length, 0);
{
  const t = best(() => {
    const c = new HeaderCodec();
    for (const b of longWire) c.decode(b);
  });
  console.log(`decode, one connection, ${LONG} peer blocks (${(wireBytes / LONG).toFixed(1)} B → ${(rawBytes / LONG).toFixed(1)} B each): ${us(t, LONG).toFixed(2)} µs/block`);
}

// 2. Many short connections: 2000 × one exec (5 blocks), a fresh codec each.
const CONNS = 2000;
const execWire = await peerBlocks(EXEC);
{
  const t = best(() => {
    for (let i = 0; i < CONNS; i++) {
      const c = new HeaderCodec();
      for (const b of execWire) c.decode(b);
    }
  });
  console.log(`decode, ${CONNS} connections × ${EXEC.length} blocks (new codec each): ${us(t, CONNS).toFixed(2)} µs/connection`);
}

// 3. What a client of ours decodes: our stored blocks (SYN_REPLY-sized).
{
  const enc = new HeaderCodec();
  const wire = Array.from({ length: LONG }, () => enc.encode(reply));
  const t = best(() => {
    const c = new HeaderCodec();
    for (const b of wire) c.decode(b);
  });
  console.log(`decode, our stored blocks, ${LONG} on one connection: ${us(t, LONG).toFixed(2)} µs/block`);
  const te = best(() => {
    const c = new HeaderCodec();
    for (let i = 0; i < LONG; i++) c.encode(reply);
  });
  console.log(`encode, ${LONG} SYN_REPLY blocks on one connection: ${us(te, LONG).toFixed(2)} µs/block`);
}

// 4. Bombs: a 255 KiB control frame (under the 256 KiB frame limit) that inflates to
// ~250 MiB, refused at the 64 KiB header bound; and the time that takes.
{
  const bomb = zlib.deflateSync(Buffer.alloc(250 << 20), { dictionary: SPDY3_DICTIONARY, level: 9, finishFlush: zlib.constants.Z_SYNC_FLUSH }).subarray(0, 255 << 10);
  let refused = 0;
  const n = 200;
  const t = best(() => {
    for (let i = 0; i < n; i++) {
      try {
        new HeaderCodec().decode(bomb);
      } catch {
        refused++;
      }
    }
  });
  if (refused !== 5 * n) throw new Error(`a bomb was not refused (${refused} of ${5 * n})`);
  console.log(`bomb (${(bomb.length / 1024).toFixed(0)} KiB frame → 250 MiB) refused at the 64 KiB bound: ${us(t, n).toFixed(1)} µs each`);
}

// 5. Memory a connection's codec keeps: after one exec's blocks, and after a long
// connection (1000 blocks: past the 32 KiB window any inflater must keep).
const kept: HeaderCodec[][] = [];
for (const [label, conns, wire] of [
  ['after one exec', CONNS, execWire],
  ['after 1000 blocks', 200, longWire.slice(0, 1000)],
] as const) {
  // Every codec stays alive to the end, so no measurement sees an earlier one freed.
  const keep: HeaderCodec[] = [];
  kept.push(keep);
  await settle();
  const m0 = process.memoryUsage();
  for (let i = 0; i < conns; i++) {
    const c = new HeaderCodec();
    for (const b of wire) c.decode(b);
    keep.push(c);
  }
  await settle();
  const m1 = process.memoryUsage();
  const per = (m1.heapUsed - m0.heapUsed + (m1.arrayBuffers - m0.arrayBuffers)) / conns / 1024;
  console.log(`memory per connection codec (heap + array buffers, ${label}): ${per.toFixed(1)} KiB (${keep.length} kept)`);
}
