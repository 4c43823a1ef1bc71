import { createRequire } from 'node:module';
import type { Inflate } from 'pako';

// pako (~190 KB of source, held by V8 for as long as the daemon runs) is loaded by the
// first SPDY connection, not at start: most nodes never get one between restarts.
const requireCjs = createRequire(import.meta.url);
let pako: typeof import('pako') | undefined;
const loadPako = (): typeof import('pako') => (pako ??= requireCjs('pako') as typeof import('pako'));

// The zlib streams of SPDY/3 header compression (SPDY/3 §2.6.10.1): ONE zlib stream per
// direction for the whole connection, its preset dictionary named in the zlib header,
// and a Z_SYNC_FLUSH after every header block, so each block must be decoded at once
// and the context kept for the next.
//
// Why pako for the receiving half: Node's zlib has no synchronous call that keeps a
// context — inflateSync closes it after one block (the second block is then "incorrect
// header check"), and createInflate answers through the event loop, which would make
// every SYN_STREAM an await. pako's streaming Inflate is a port of zlib's own inflate
// (checked output, dictionary id verified, a 32 KiB window kept across pushes) and
// decodes a sync-flushed chunk synchronously. Against the hand-written decoder it
// replaced (bench/spdy-headers.ts, on the loaded 2-core dev host): 2.5-5x faster per
// block on a long connection, the same on a new one; it holds ~42 KiB per connection
// (the whole 32 KiB window at once, where ours grew into it) and takes ~0.3-0.5 ms,
// about twice as long, to refuse a 255 KiB bomb.

/** Output is handed out in pieces of this size, so a bomb is stopped within one of them. */
const CHUNK = 1024;
/** The last bytes of every Z_SYNC_FLUSH: an empty stored block's LEN and NLEN. */
const SYNC_MARKER = Buffer.from([0x00, 0x00, 0xff, 0xff]);

export class InflateError extends Error {
  override name = 'InflateError';
}

/**
 * One direction of a connection's header compression: feed it each block in order.
 * After an error the context is lost and every later call fails (a connection error).
 */
export class ZlibStreamInflater {
  readonly #inflate: Inflate;
  #out: Buffer[] = [];
  #outLen = 0;
  #max = 0;
  #broken: string | undefined;

  constructor(dictionary: Buffer) {
    // windowBits 15 without +32: a zlib stream only, no gzip auto-detection.
    this.#inflate = new (loadPako().Inflate)({ windowBits: 15, dictionary, chunkSize: CHUNK });
    this.#inflate.onData = (chunk) => {
      this.#outLen += chunk.length;
      // Throwing here stops pako mid-stream: the output never grows past max + CHUNK.
      if (this.#outLen > this.#max) throw new InflateError(`header block inflates past ${this.#max} bytes`);
      // pako hands out a view of a buffer it then drops: keep it without copying.
      this.#out.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    };
    this.#inflate.onEnd = () => {};
  }

  /** Decodes one sync-flushed piece of the stream; at most maxOutput bytes come out. */
  inflate(input: Buffer, maxOutput: number): Buffer {
    if (this.#broken !== undefined) throw new InflateError(`the zlib stream is unusable after an earlier error (${this.#broken})`);
    if (this.#inflate.ended) throw new InflateError('data after the end of the zlib stream');
    this.#out = [];
    this.#outLen = 0;
    this.#max = maxOutput;
    try {
      const ok = this.#inflate.push(input, loadPako().Z_SYNC_FLUSH);
      if (!ok) throw new InflateError(this.#inflate.msg || `zlib error ${this.#inflate.err}`);
      // A block must end at a flush point, as the protocol has every sender do: short
      // of the stream's end, that is the sync-flush marker. A block cut short would
      // otherwise leave half a deflate block in the context for the next one.
      if (!this.#inflate.ended && !input.subarray(-SYNC_MARKER.length).equals(SYNC_MARKER)) {
        throw new InflateError('header block ends inside a deflate block (no Z_SYNC_FLUSH at its end)');
      }
    } catch (err) {
      this.#broken = (err as Error).message;
      this.#out = [];
      throw err instanceof InflateError ? err : new InflateError((err as Error).message);
    }
    const out = this.#out.length === 1 ? this.#out[0]! : Buffer.concat(this.#out, this.#outLen);
    this.#out = [];
    return out;
  }
}

/**
 * The sending half: a zlib stream of stored (uncompressed) deflate blocks. It is a
 * valid zlib stream for any inflater (the SPDY dictionary is announced, merely never
 * referenced), needs no state but "header sent", and each piece ends byte-aligned, as
 * a sync flush would.
 *
 * Why by hand and not a library: our header blocks are a few dozen bytes, so
 * compressing them buys a few bytes per SYN_REPLY, while a zlib deflate context per
 * connection costs memory (pako's Deflate holds 266 KiB at any level, Node's a native
 * context; measured with bench/spdy-headers.ts' method). Node's deflateSync cannot
 * continue one stream across blocks (each call starts a new zlib header). What is
 * left is the four framing facts below, pinned by known-vector tests and read back by
 * Node's zlib in them.
 */
export class ZlibStoredDeflater {
  readonly #dictId: number;
  #headerSent = false;

  /** dictId: the Adler-32 of the preset dictionary, as the zlib header names it. */
  constructor(dictId: number) {
    this.#dictId = dictId;
  }

  deflate(data: Buffer): Buffer {
    const parts: Buffer[] = [];
    if (!this.#headerSent) {
      this.#headerSent = true;
      const h = Buffer.allocUnsafe(6);
      // CMF 0x78 (deflate, 32K window), FLG with FDICT and FLEVEL 0, check bits so
      // that (CMF*256 + FLG) % 31 == 0.
      const flg0 = 0x20;
      const flg = flg0 + (31 - (((0x78 << 8) | flg0) % 31)) % 31;
      h[0] = 0x78;
      h[1] = flg;
      h.writeUInt32BE(this.#dictId, 2);
      parts.push(h);
    }
    for (let off = 0; off < data.length; off += 0xffff) {
      const piece = data.subarray(off, Math.min(off + 0xffff, data.length));
      parts.push(storedHeader(piece.length), piece);
    }
    // End like a Z_SYNC_FLUSH does, with an EMPTY stored block. Readers rely on it:
    // Go's flate only hands out a stored block's bytes once it has read the next
    // block header, and without this marker that read runs past the frame (and Go's
    // spdy framer then fails every later header block of the connection).
    parts.push(storedHeader(0));
    return Buffer.concat(parts);
  }
}

/** A non-final stored block header: BFINAL=0, BTYPE=00 padded to the byte, LEN, NLEN. */
function storedHeader(len: number): Buffer {
  const b = Buffer.allocUnsafe(5);
  b[0] = 0;
  b.writeUInt16LE(len, 1);
  b.writeUInt16LE(len ^ 0xffff, 3);
  return b;
}
