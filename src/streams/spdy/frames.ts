// SPDY/3.1 frames: their in-memory shapes and the byte layout (SPDY/3 draft §2.2–2.6).
//
//  control frame:  |1| version(15)=3 | type(16) | flags(8) | length(24) | payload
//  data frame:     |0| stream id(31)            | flags(8) | length(24) | payload
//
// Header blocks (SYN_STREAM, SYN_REPLY, HEADERS) are compressed by the caller through
// HeaderCodec (header-block.ts): this module only places the compressed bytes.
//
// Why our own framer: the one npm implementation, spdy-transport (3.0.0), decompresses
// headers through Node's asynchronous zlib streams (every SYN_STREAM an await, no
// bound on a block's output) and brings push, priorities and an HTTP/2 mode we do not
// serve; the frames kubelet and crictl use are the handful below.

export const SPDY_VERSION = 3;

export const FrameType = {
  SynStream: 1,
  SynReply: 2,
  RstStream: 3,
  Settings: 4,
  Ping: 6,
  GoAway: 7,
  Headers: 8,
  WindowUpdate: 9,
} as const;

export const FLAG_FIN = 0x01;
export const FLAG_UNIDIRECTIONAL = 0x02;

/** RST_STREAM status codes. */
export const RstStatus = {
  ProtocolError: 1,
  InvalidStream: 2,
  RefusedStream: 3,
  UnsupportedVersion: 4,
  Cancel: 5,
  InternalError: 6,
  FlowControlError: 7,
  StreamInUse: 8,
  StreamAlreadyClosed: 9,
  FrameTooLarge: 11,
} as const;

export const GoAwayStatus = { Ok: 0, ProtocolError: 1, InternalError: 2 } as const;

/** The largest length a frame can carry (24 bits). */
export const MAX_FRAME_LENGTH = 0xffffff;
const MAX_STREAM_ID = 0x7fffffff;

export type Frame =
  | { type: 'data'; streamId: number; fin: boolean; data: Buffer }
  | {
      type: 'syn_stream';
      streamId: number;
      associatedId: number;
      priority: number;
      slot: number;
      fin: boolean;
      unidirectional: boolean;
      /** Compressed name/value block. */
      block: Buffer;
    }
  | { type: 'syn_reply'; streamId: number; fin: boolean; block: Buffer }
  | { type: 'headers'; streamId: number; fin: boolean; block: Buffer }
  | { type: 'rst_stream'; streamId: number; status: number }
  | { type: 'settings'; clear: boolean; entries: { flags: number; id: number; value: number }[] }
  | { type: 'ping'; id: number }
  | { type: 'goaway'; lastGoodStreamId: number; status: number }
  | { type: 'window_update'; streamId: number; delta: number }
  /** A control frame type we do not know (e.g. CREDENTIAL): the draft says ignore it. */
  | { type: 'unknown'; frameType: number };

/** A malformed or unsupported frame: the session answers with GOAWAY or RST_STREAM. */
export class SpdyProtocolError extends Error {
  /** Set when only one stream is affected (RST_STREAM rather than GOAWAY). */
  readonly streamId: number | undefined;
  readonly status: number;
  constructor(message: string, status: number = RstStatus.ProtocolError, streamId?: number) {
    super(message);
    this.name = 'SpdyProtocolError';
    this.status = status;
    this.streamId = streamId;
  }
}

function controlHeader(type: number, flags: number, length: number): Buffer {
  if (length > MAX_FRAME_LENGTH) throw new SpdyProtocolError(`frame of ${length} bytes is too large`, RstStatus.FrameTooLarge);
  const b = Buffer.allocUnsafe(8);
  b.writeUInt16BE(0x8000 | SPDY_VERSION, 0);
  b.writeUInt16BE(type, 2);
  b.writeUInt32BE(((flags & 0xff) << 24 | length) >>> 0, 4);
  return b;
}

function checkId(id: number, what: string): void {
  if (!Number.isInteger(id) || id < 0 || id > MAX_STREAM_ID) throw new RangeError(`${what} ${id} is not a 31-bit id`);
}

/** The header of a DATA frame; the payload is written after it without copying. */
export function dataFrameHeader(streamId: number, length: number, fin: boolean): Buffer {
  checkId(streamId, 'stream id');
  if (length > MAX_FRAME_LENGTH) throw new RangeError(`data frame of ${length} bytes is too large`);
  const b = Buffer.allocUnsafe(8);
  b.writeUInt32BE(streamId, 0);
  b.writeUInt32BE(((fin ? FLAG_FIN : 0) << 24 | length) >>> 0, 4);
  return b;
}

/** Encodes one frame into bytes. */
export function encodeFrame(f: Frame): Buffer {
  switch (f.type) {
    case 'data':
      return Buffer.concat([dataFrameHeader(f.streamId, f.data.length, f.fin), f.data]);
    case 'syn_stream': {
      checkId(f.streamId, 'stream id');
      checkId(f.associatedId, 'associated stream id');
      const p = Buffer.allocUnsafe(10);
      p.writeUInt32BE(f.streamId, 0);
      p.writeUInt32BE(f.associatedId, 4);
      p[8] = (f.priority & 0x7) << 5;
      p[9] = f.slot & 0xff;
      const flags = (f.fin ? FLAG_FIN : 0) | (f.unidirectional ? FLAG_UNIDIRECTIONAL : 0);
      return Buffer.concat([controlHeader(FrameType.SynStream, flags, 10 + f.block.length), p, f.block]);
    }
    case 'syn_reply':
    case 'headers': {
      checkId(f.streamId, 'stream id');
      const p = Buffer.allocUnsafe(4);
      p.writeUInt32BE(f.streamId, 0);
      const type = f.type === 'syn_reply' ? FrameType.SynReply : FrameType.Headers;
      return Buffer.concat([controlHeader(type, f.fin ? FLAG_FIN : 0, 4 + f.block.length), p, f.block]);
    }
    case 'rst_stream': {
      checkId(f.streamId, 'stream id');
      const p = Buffer.allocUnsafe(8);
      p.writeUInt32BE(f.streamId, 0);
      p.writeUInt32BE(f.status >>> 0, 4);
      return Buffer.concat([controlHeader(FrameType.RstStream, 0, 8), p]);
    }
    case 'settings': {
      const p = Buffer.allocUnsafe(4 + 8 * f.entries.length);
      p.writeUInt32BE(f.entries.length, 0);
      f.entries.forEach((e, i) => {
        p.writeUInt32BE(((e.flags & 0xff) << 24 | (e.id & 0xffffff)) >>> 0, 4 + i * 8);
        p.writeUInt32BE(e.value >>> 0, 8 + i * 8);
      });
      return Buffer.concat([controlHeader(FrameType.Settings, f.clear ? 1 : 0, p.length), p]);
    }
    case 'ping': {
      const p = Buffer.allocUnsafe(4);
      p.writeUInt32BE(f.id >>> 0, 0);
      return Buffer.concat([controlHeader(FrameType.Ping, 0, 4), p]);
    }
    case 'goaway': {
      checkId(f.lastGoodStreamId, 'last good stream id');
      const p = Buffer.allocUnsafe(8);
      p.writeUInt32BE(f.lastGoodStreamId, 0);
      p.writeUInt32BE(f.status >>> 0, 4);
      return Buffer.concat([controlHeader(FrameType.GoAway, 0, 8), p]);
    }
    case 'unknown':
      throw new RangeError(`cannot encode control frame type ${f.frameType}`);
    case 'window_update': {
      checkId(f.streamId, 'stream id');
      const p = Buffer.allocUnsafe(8);
      p.writeUInt32BE(f.streamId, 0);
      p.writeUInt32BE(f.delta & 0x7fffffff, 4);
      return Buffer.concat([controlHeader(FrameType.WindowUpdate, 0, 8), p]);
    }
  }
}

export interface DecoderLimits {
  /** Largest control frame payload accepted (header blocks are the big ones). */
  maxControlFrameBytes: number;
  /** Largest DATA payload accepted (the protocol allows 16 MiB − 1). */
  maxDataFrameBytes: number;
}

export const DEFAULT_DECODER_LIMITS: DecoderLimits = { maxControlFrameBytes: 256 * 1024, maxDataFrameBytes: MAX_FRAME_LENGTH };

/**
 * Splits a byte stream into frames. Bytes arrive in arbitrary pieces; a frame is
 * emitted once its whole payload is here. Throws SpdyProtocolError on anything
 * malformed, after which the decoder must not be used again (the session ends).
 */
export class FrameDecoder {
  #chunks: Buffer[] = [];
  #buffered = 0;
  readonly #limits: DecoderLimits;

  constructor(limits: Partial<DecoderLimits> = {}) {
    this.#limits = { ...DEFAULT_DECODER_LIMITS, ...limits };
  }

  get bufferedBytes(): number {
    return this.#buffered;
  }

  /** Adds bytes; returns every frame completed by them, in order. */
  push(chunk: Buffer): Frame[] {
    if (chunk.length > 0) {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
    }
    const out: Frame[] = [];
    for (;;) {
      if (this.#buffered < 8) return out;
      const head = this.#peek(8);
      const length = head.readUInt32BE(4) & 0xffffff;
      const isControl = (head[0]! & 0x80) !== 0;
      const max = isControl ? this.#limits.maxControlFrameBytes : this.#limits.maxDataFrameBytes;
      if (length > max) {
        const id = isControl ? undefined : head.readUInt32BE(0) & 0x7fffffff;
        throw new SpdyProtocolError(`frame payload of ${length} bytes exceeds the limit of ${max}`, RstStatus.FrameTooLarge, id);
      }
      if (this.#buffered < 8 + length) return out;
      const whole = this.#take(8 + length);
      out.push(parseFrame(whole.subarray(0, 8), whole.subarray(8)));
    }
  }

  #peek(n: number): Buffer {
    if (this.#chunks[0]!.length >= n) return this.#chunks[0]!;
    const joined = Buffer.concat(this.#chunks);
    this.#chunks = [joined];
    return joined;
  }

  #take(n: number): Buffer {
    const first = this.#chunks[0]!;
    if (first.length >= n) {
      const out = first.subarray(0, n);
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
      this.#buffered -= n;
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const c = this.#chunks[0]!;
      const k = Math.min(c.length, n - off);
      c.copy(out, off, 0, k);
      off += k;
      if (k === c.length) this.#chunks.shift();
      else this.#chunks[0] = c.subarray(k);
    }
    this.#buffered -= n;
    return out;
  }
}

function need(payload: Buffer, n: number, what: string): void {
  if (payload.length < n) throw new SpdyProtocolError(`${what} frame is truncated (${payload.length} of ${n} bytes)`);
}

function parseFrame(head: Buffer, payload: Buffer): Frame {
  const flags = head[4]!;
  if ((head[0]! & 0x80) === 0) {
    const streamId = head.readUInt32BE(0) & 0x7fffffff;
    if (streamId === 0) throw new SpdyProtocolError('DATA frame on stream 0');
    return { type: 'data', streamId, fin: (flags & FLAG_FIN) !== 0, data: payload };
  }
  const version = head.readUInt16BE(0) & 0x7fff;
  const type = head.readUInt16BE(2);
  if (version !== SPDY_VERSION) throw new SpdyProtocolError(`unsupported SPDY version ${version}`, RstStatus.UnsupportedVersion);
  const fin = (flags & FLAG_FIN) !== 0;
  switch (type) {
    case FrameType.SynStream: {
      need(payload, 10, 'SYN_STREAM');
      const streamId = payload.readUInt32BE(0) & 0x7fffffff;
      if (streamId === 0) throw new SpdyProtocolError('SYN_STREAM for stream 0');
      return {
        type: 'syn_stream',
        streamId,
        associatedId: payload.readUInt32BE(4) & 0x7fffffff,
        priority: payload[8]! >> 5,
        slot: payload[9]!,
        fin,
        unidirectional: (flags & FLAG_UNIDIRECTIONAL) !== 0,
        block: payload.subarray(10),
      };
    }
    case FrameType.SynReply:
    case FrameType.Headers: {
      need(payload, 4, type === FrameType.SynReply ? 'SYN_REPLY' : 'HEADERS');
      const streamId = payload.readUInt32BE(0) & 0x7fffffff;
      return { type: type === FrameType.SynReply ? 'syn_reply' : 'headers', streamId, fin, block: payload.subarray(4) };
    }
    case FrameType.RstStream:
      need(payload, 8, 'RST_STREAM');
      return { type: 'rst_stream', streamId: payload.readUInt32BE(0) & 0x7fffffff, status: payload.readUInt32BE(4) };
    case FrameType.Settings: {
      need(payload, 4, 'SETTINGS');
      const count = payload.readUInt32BE(0);
      if (payload.length !== 4 + count * 8) throw new SpdyProtocolError(`SETTINGS frame says ${count} entries but carries ${payload.length} bytes`);
      const entries = [];
      for (let i = 0; i < count; i++) {
        const fi = payload.readUInt32BE(4 + i * 8);
        entries.push({ flags: fi >>> 24, id: fi & 0xffffff, value: payload.readUInt32BE(8 + i * 8) });
      }
      return { type: 'settings', clear: (flags & 1) !== 0, entries };
    }
    case FrameType.Ping:
      need(payload, 4, 'PING');
      return { type: 'ping', id: payload.readUInt32BE(0) };
    case FrameType.GoAway:
      // SPDY/2 GOAWAY had no status; accept both lengths.
      need(payload, 4, 'GOAWAY');
      return {
        type: 'goaway',
        lastGoodStreamId: payload.readUInt32BE(0) & 0x7fffffff,
        status: payload.length >= 8 ? payload.readUInt32BE(4) : 0,
      };
    case FrameType.WindowUpdate:
      need(payload, 8, 'WINDOW_UPDATE');
      return { type: 'window_update', streamId: payload.readUInt32BE(0) & 0x7fffffff, delta: payload.readUInt32BE(4) & 0x7fffffff };
    default:
      return { type: 'unknown', frameType: type };
  }
}
