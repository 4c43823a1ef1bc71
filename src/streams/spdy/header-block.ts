import { SPDY3_DICTIONARY, SPDY3_DICTIONARY_ID } from './dictionary.js';
import { RstStatus, SpdyProtocolError } from './frames.js';
import { ZlibStoredDeflater, ZlibStreamInflater } from './inflate.js';

/**
 * Header names (lowercase) to values. A name sent several times travels as one entry
 * whose values are joined by NUL (SPDY/3 §2.6.10); we keep them as an array.
 */
export type SpdyHeaders = Record<string, string[]>;

/** The first value of a header, or undefined. */
export function headerValue(h: SpdyHeaders, name: string): string | undefined {
  return h[name]?.[0];
}

/**
 * Encodes and decodes SPDY/3 name/value blocks. SPDY compresses every header block
 * of a connection with ONE zlib stream per direction (the dictionary is only set at
 * its start), so each connection owns one HeaderCodec and must feed it every header
 * block, in order, even ones it ignores. Each block ends with a Z_SYNC_FLUSH so the
 * peer can decode it without waiting for more.
 */
export class HeaderCodec {
  readonly #deflate = new ZlibStoredDeflater(SPDY3_DICTIONARY_ID);
  readonly #inflate = new ZlibStreamInflater(SPDY3_DICTIONARY);
  readonly #maxBlockBytes: number;

  constructor(opts: { maxBlockBytes?: number } = {}) {
    // Bounds what one block may inflate to: a zip bomb in a header block ends the
    // connection instead of eating the daemon's memory.
    this.#maxBlockBytes = opts.maxBlockBytes ?? 64 * 1024;
  }

  encode(headers: SpdyHeaders): Buffer {
    const entries = Object.entries(headers);
    const parts: Buffer[] = [];
    const count = Buffer.allocUnsafe(4);
    count.writeUInt32BE(entries.length);
    parts.push(count);
    for (const [name, values] of entries) {
      const n = Buffer.from(name.toLowerCase(), 'utf8');
      const v = Buffer.from(values.join('\0'), 'utf8');
      const nl = Buffer.allocUnsafe(4);
      nl.writeUInt32BE(n.length);
      const vl = Buffer.allocUnsafe(4);
      vl.writeUInt32BE(v.length);
      parts.push(nl, n, vl, v);
    }
    return this.#deflate.deflate(Buffer.concat(parts));
  }

  decode(block: Buffer, streamId?: number): SpdyHeaders {
    let raw: Buffer;
    try {
      raw = this.#inflate.inflate(block, this.#maxBlockBytes);
    } catch (err) {
      // The shared inflate context is now unusable: this is a connection error.
      throw new SpdyProtocolError(`header block cannot be decompressed: ${(err as Error).message}`, RstStatus.ProtocolError);
    }
    return parseBlock(raw, streamId);
  }

  close(): void {
    // Nothing native to free; kept so sessions can say they are done with it.
  }
}

/** Parses an uncompressed name/value block. */
export function parseBlock(raw: Buffer, streamId?: number): SpdyHeaders {
  const bad = (what: string) => new SpdyProtocolError(`malformed header block: ${what}`, RstStatus.ProtocolError, streamId);
  if (raw.length < 4) throw bad('missing pair count');
  const count = raw.readUInt32BE(0);
  // Each pair takes at least 8 bytes: a count past that is a lie, not a big block.
  if (count > (raw.length - 4) / 8) throw bad(`${count} pairs cannot fit in ${raw.length} bytes`);
  const out: SpdyHeaders = Object.create(null) as SpdyHeaders;
  let off = 4;
  const str = (): string => {
    if (off + 4 > raw.length) throw bad('truncated length');
    const len = raw.readUInt32BE(off);
    off += 4;
    if (off + len > raw.length) throw bad('truncated string');
    const s = raw.toString('utf8', off, off + len);
    off += len;
    return s;
  };
  for (let i = 0; i < count; i++) {
    const name = str();
    const value = str();
    if (name.length === 0) throw bad('empty header name');
    if (name !== name.toLowerCase()) throw bad(`header name ${JSON.stringify(name)} is not lowercase`);
    if (name in out) throw bad(`header ${JSON.stringify(name)} appears twice`);
    out[name] = value.split('\0');
  }
  if (off !== raw.length) throw bad(`${raw.length - off} bytes after the last pair`);
  return out;
}
