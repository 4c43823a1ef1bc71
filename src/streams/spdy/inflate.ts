// A small synchronous inflater (RFC 1950 zlib + RFC 1951 deflate) for SPDY header blocks.
//
// Why our own: SPDY keeps ONE zlib stream per direction for the whole connection and
// sync-flushes it after every header block, so each block must be decoded at once and
// the context kept for the next. Node's zlib offers either one-shot sync calls (which
// close the context) or async streams (which would make every SYN_STREAM an await and
// give no hard bound on output). A sync-flushed block always holds whole deflate blocks,
// so between header blocks the only state is the 32 KiB window (seeded with the SPDY
// dictionary) — which this class keeps. Header blocks are small, so a clear
// bit-at-a-time decoder is fast enough.

const MAX_BITS = 15;
const WINDOW = 32 * 1024;
const LEN_BASE = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258];
const LEN_EXTRA = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
const DIST_BASE = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577];
const DIST_EXTRA = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13];
const CLEN_ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

export class InflateError extends Error {
  override name = 'InflateError';
}

/** A canonical Huffman code: how many codes of each length, and symbols in code order. */
interface Huffman {
  count: Uint16Array;
  symbol: Uint16Array;
}

function buildHuffman(lengths: ArrayLike<number>, n: number): Huffman {
  const count = new Uint16Array(MAX_BITS + 1);
  for (let i = 0; i < n; i++) count[lengths[i]!]!++;
  // An over-subscribed code cannot be decoded; an incomplete one is allowed (RFC 1951
  // permits a single distance code).
  let left = 1;
  for (let len = 1; len <= MAX_BITS; len++) {
    left = (left << 1) - count[len]!;
    if (left < 0) throw new InflateError('over-subscribed Huffman code');
  }
  const offs = new Uint16Array(MAX_BITS + 1);
  for (let len = 1; len < MAX_BITS; len++) offs[len + 1] = offs[len]! + count[len]!;
  const symbol = new Uint16Array(n);
  for (let s = 0; s < n; s++) if (lengths[s] !== 0) symbol[offs[lengths[s]!]!++] = s;
  count[0] = 0;
  return { count, symbol };
}

const FIXED = (() => {
  const l = new Uint8Array(288);
  l.fill(8, 0, 144);
  l.fill(9, 144, 256);
  l.fill(7, 256, 280);
  l.fill(8, 280, 288);
  const d = new Uint8Array(30).fill(5);
  return { lit: buildHuffman(l, 288), dist: buildHuffman(d, 30) };
})();

export function adler32(buf: Uint8Array): number {
  let a = 1;
  let b = 0;
  for (let i = 0; i < buf.length; i++) {
    a = (a + buf[i]!) % 65521;
    b = (b + a) % 65521;
  }
  return ((b << 16) | a) >>> 0;
}

/** One direction of a connection's header compression: feed it each block in order. */
export class ZlibStreamInflater {
  #window: Buffer;
  readonly #dictId: number;
  #headerDone = false;
  #finished = false;
  // Per-call state.
  #in: Buffer = Buffer.alloc(0);
  #pos = 0;
  #bitBuf = 0;
  #bitCnt = 0;
  #out: Buffer = Buffer.alloc(0);
  #outLen = 0;
  #max = 0;

  constructor(dictionary: Buffer) {
    this.#window = Buffer.from(dictionary.subarray(Math.max(0, dictionary.length - WINDOW)));
    this.#dictId = adler32(dictionary);
  }

  /** Decodes one sync-flushed piece of the stream; at most maxOutput bytes come out. */
  inflate(input: Buffer, maxOutput: number): Buffer {
    if (this.#finished) throw new InflateError('data after the end of the zlib stream');
    this.#in = input;
    this.#pos = 0;
    this.#bitBuf = 0;
    this.#bitCnt = 0;
    this.#out = Buffer.allocUnsafe(Math.min(maxOutput, Math.max(256, input.length * 4)));
    this.#outLen = 0;
    this.#max = maxOutput;
    if (!this.#headerDone) this.#readZlibHeader();
    while (this.#pos < this.#in.length && !this.#finished) {
      const last = this.#bits(1);
      const type = this.#bits(2);
      if (type === 0) this.#stored();
      else if (type === 1) this.#codes(FIXED.lit, FIXED.dist);
      else if (type === 2) this.#dynamic();
      else throw new InflateError('invalid deflate block type 3');
      if (last) this.#finished = true;
    }
    const out = this.#out.subarray(0, this.#outLen);
    const joined = Buffer.concat([this.#window, out]);
    this.#window = Buffer.from(joined.subarray(Math.max(0, joined.length - WINDOW)));
    return Buffer.from(out);
  }

  #readZlibHeader(): void {
    if (this.#in.length < 2) throw new InflateError('truncated zlib header');
    const cmf = this.#in[0]!;
    const flg = this.#in[1]!;
    if ((cmf & 0x0f) !== 8 || (cmf >> 4) > 7) throw new InflateError('not a deflate zlib stream');
    if (((cmf << 8) | flg) % 31 !== 0) throw new InflateError('bad zlib header check bits');
    this.#pos = 2;
    if (flg & 0x20) {
      if (this.#in.length < 6) throw new InflateError('truncated zlib dictionary id');
      const id = this.#in.readUInt32BE(2);
      if (id !== this.#dictId) throw new InflateError(`zlib stream wants dictionary ${id.toString(16)}, not the SPDY/3 one`);
      this.#pos = 6;
    }
    this.#headerDone = true;
  }

  #bits(n: number): number {
    let v = this.#bitBuf;
    while (this.#bitCnt < n) {
      if (this.#pos >= this.#in.length) throw new InflateError('header block ends inside a deflate block');
      v |= this.#in[this.#pos++]! << this.#bitCnt;
      this.#bitCnt += 8;
    }
    this.#bitBuf = v >>> n;
    this.#bitCnt -= n;
    return v & ((1 << n) - 1);
  }

  #emit(byte: number): void {
    if (this.#outLen >= this.#max) throw new InflateError(`header block inflates past ${this.#max} bytes`);
    if (this.#outLen === this.#out.length) {
      const bigger = Buffer.allocUnsafe(Math.min(this.#max, this.#out.length * 2));
      this.#out.copy(bigger, 0, 0, this.#outLen);
      this.#out = bigger;
    }
    this.#out[this.#outLen++] = byte;
  }

  #stored(): void {
    this.#bitBuf = 0;
    this.#bitCnt = 0;
    if (this.#pos + 4 > this.#in.length) throw new InflateError('truncated stored block');
    const len = this.#in.readUInt16LE(this.#pos);
    const nlen = this.#in.readUInt16LE(this.#pos + 2);
    if ((len ^ 0xffff) !== nlen) throw new InflateError('stored block length check failed');
    this.#pos += 4;
    if (this.#pos + len > this.#in.length) throw new InflateError('truncated stored block');
    for (let i = 0; i < len; i++) this.#emit(this.#in[this.#pos + i]!);
    this.#pos += len;
  }

  #decode(h: Huffman): number {
    let code = 0;
    let first = 0;
    let index = 0;
    for (let len = 1; len <= MAX_BITS; len++) {
      code |= this.#bits(1);
      const count = h.count[len]!;
      if (code - count < first) return h.symbol[index + (code - first)]!;
      index += count;
      first += count;
      first <<= 1;
      code <<= 1;
    }
    throw new InflateError('invalid Huffman code');
  }

  #codes(lit: Huffman, dist: Huffman): void {
    for (;;) {
      const sym = this.#decode(lit);
      if (sym < 256) this.#emit(sym);
      else if (sym === 256) return;
      else {
        const li = sym - 257;
        if (li >= 29) throw new InflateError('invalid length symbol');
        const len = LEN_BASE[li]! + this.#bits(LEN_EXTRA[li]!);
        const di = this.#decode(dist);
        if (di >= 30) throw new InflateError('invalid distance symbol');
        const d = DIST_BASE[di]! + this.#bits(DIST_EXTRA[di]!);
        if (d > this.#outLen + this.#window.length) throw new InflateError('distance reaches before the window');
        for (let i = 0; i < len; i++) {
          const back = this.#outLen - d;
          this.#emit(back >= 0 ? this.#out[back]! : this.#window[this.#window.length + back]!);
        }
      }
    }
  }

  #dynamic(): void {
    const nlen = this.#bits(5) + 257;
    const ndist = this.#bits(5) + 1;
    const ncode = this.#bits(4) + 4;
    if (nlen > 286 || ndist > 30) throw new InflateError('bad dynamic block counts');
    const lengths = new Uint8Array(320);
    for (let i = 0; i < ncode; i++) lengths[CLEN_ORDER[i]!] = this.#bits(3);
    const lencode = buildHuffman(lengths, 19);
    lengths.fill(0);
    let i = 0;
    while (i < nlen + ndist) {
      const sym = this.#decode(lencode);
      if (sym < 16) lengths[i++] = sym;
      else {
        let rep: number;
        let val = 0;
        if (sym === 16) {
          if (i === 0) throw new InflateError('repeat with no previous length');
          val = lengths[i - 1]!;
          rep = 3 + this.#bits(2);
        } else if (sym === 17) rep = 3 + this.#bits(3);
        else rep = 11 + this.#bits(7);
        if (i + rep > nlen + ndist) throw new InflateError('too many code lengths');
        while (rep--) lengths[i++] = val;
      }
    }
    if (lengths[256] === 0) throw new InflateError('no end-of-block code');
    const lit = buildHuffman(lengths.subarray(0, nlen), nlen);
    const dist = buildHuffman(lengths.subarray(nlen, nlen + ndist), ndist);
    this.#codes(lit, dist);
  }
}

/**
 * The sending half: a zlib stream of stored (uncompressed) deflate blocks. It is a
 * valid zlib stream for any inflater (the SPDY dictionary is announced, merely never
 * referenced), needs no state but "header sent", and each piece ends byte-aligned, as
 * a sync flush would. Our header blocks are a few dozen bytes: compressing them buys
 * nothing worth a zlib context per connection.
 */
export class ZlibStoredDeflater {
  readonly #dictId: number;
  #headerSent = false;

  constructor(dictionary: Buffer) {
    this.#dictId = adler32(dictionary);
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
