import { EventEmitter } from 'node:events';
import type { Duplex as DuplexType } from 'node:stream';
import { Duplex } from 'node:stream';
import {
  dataFrameHeader,
  encodeFrame,
  FrameDecoder,
  GoAwayStatus,
  RstStatus,
  SpdyProtocolError,
  type Frame,
} from './frames.js';
import { HeaderCodec, type SpdyHeaders } from './header-block.js';

/** How long a session we said GOAWAY to may linger for the peer to close. */
const GOAWAY_LINGER_MS = 10_000;

export interface SessionOptions {
  /** Server sessions accept odd (client-made) stream ids and make even ones. */
  server: boolean;
  /** Largest decompressed header block accepted. */
  maxHeaderBytes?: number;
  /** Largest control frame (compressed header block) accepted. */
  maxControlFrameBytes?: number;
  /** Streams open at once; past it a new one is refused (RST_STREAM REFUSED_STREAM). */
  maxStreams?: number;
  /** Largest DATA frame we send; bigger writes are split. */
  maxSendFrameBytes?: number;
  /**
   * Largest DATA frame accepted. Go clients write io.Copy-sized frames (32 KiB); the
   * protocol's 16 MiB would let one peer park that much in our memory per frame.
   * With a blocked stream pausing the whole socket, a connection holds at most about
   * one stream buffer plus one frame.
   */
  maxRecvFrameBytes?: number;
}

/**
 * One SPDY/3.1 connection over an upgraded socket: frames in and out, one stream
 * object per SYN_STREAM. Flow control is deliberately not enforced on sending: the
 * Go clients (kubelet, crictl, via moby/spdystream) never send WINDOW_UPDATE, so a
 * sender that honoured the 64 KiB initial window would stall. Backpressure comes
 * from TCP instead: a stream's writes complete only when the socket has drained, and
 * a stream whose reader is full pauses reading from the socket.
 *
 * Events: 'stream' (SpdyStream, peer-initiated), 'goaway' (status), 'close', 'error'
 * (protocol errors, after which the session is torn down).
 */
export class SpdySession extends EventEmitter {
  readonly #socket: DuplexType;
  readonly #opts: Required<SessionOptions>;
  readonly #decoder: FrameDecoder;
  readonly #codec: HeaderCodec;
  readonly #streams = new Map<number, SpdyStream>();
  readonly #blocked = new Set<number>();
  #drainWaiters: (() => void)[] = [];
  #nextId: number;
  #lastPeerId = 0;
  #goingAway = false;
  #closed = false;
  #pingWaiters = new Map<number, () => void>();
  #nextPing: number;

  constructor(socket: DuplexType, opts: SessionOptions) {
    super();
    this.#socket = socket;
    this.#opts = {
      maxHeaderBytes: 64 * 1024,
      maxControlFrameBytes: 256 * 1024,
      maxStreams: 1000,
      maxSendFrameBytes: 128 * 1024,
      maxRecvFrameBytes: 1 << 20,
      ...opts,
    };
    this.#nextId = opts.server ? 2 : 1;
    this.#nextPing = opts.server ? 2 : 1;
    this.#decoder = new FrameDecoder({
      maxControlFrameBytes: this.#opts.maxControlFrameBytes,
      maxDataFrameBytes: this.#opts.maxRecvFrameBytes,
    });
    this.#codec = new HeaderCodec({ maxBlockBytes: this.#opts.maxHeaderBytes });
    socket.on('data', (b: Buffer) => this.#onData(b));
    socket.on('drain', () => this.#flushDrainWaiters());
    socket.on('error', () => this.#teardown());
    socket.on('close', () => this.#teardown());
    socket.on('end', () => this.#teardown());
  }

  get closed(): boolean {
    return this.#closed;
  }

  get streamCount(): number {
    return this.#streams.size;
  }

  /** Feeds bytes that arrived before the session took the socket (the upgrade's head). */
  feed(head: Buffer): void {
    if (head.length > 0) this.#onData(head);
  }

  /** Opens a stream from our side (clients; tests). */
  openStream(headers: SpdyHeaders, opts: { fin?: boolean } = {}): SpdyStream {
    if (this.#closed || this.#goingAway) throw new Error('SPDY session is closed');
    const id = this.#nextId;
    this.#nextId += 2;
    const stream = new SpdyStream(this, id, headers);
    this.#streams.set(id, stream);
    this.#send(
      encodeFrame({
        type: 'syn_stream',
        streamId: id,
        associatedId: 0,
        priority: 0,
        slot: 0,
        fin: opts.fin ?? false,
        unidirectional: false,
        block: this.#codec.encode(headers),
      }),
    );
    if (opts.fin) stream.markLocalFin();
    return stream;
  }

  /** Sends a PING and resolves when its echo arrives. */
  ping(): Promise<void> {
    const id = this.#nextPing;
    this.#nextPing = (this.#nextPing + 2) >>> 0;
    return new Promise((resolve, reject) => {
      if (this.#closed) return reject(new Error('SPDY session is closed'));
      this.#pingWaiters.set(id, resolve);
      this.#send(encodeFrame({ type: 'ping', id }));
    });
  }

  /** Says goodbye (no new streams) and ends the socket once written. */
  goAway(status: number = GoAwayStatus.Ok): void {
    if (this.#closed) return;
    if (!this.#goingAway) {
      this.#goingAway = true;
      this.#send(encodeFrame({ type: 'goaway', lastGoodStreamId: this.#lastPeerId, status }));
    }
    this.#socket.end();
    // A peer that never closes its side must not hold the socket forever.
    setTimeout(() => this.destroy(), GOAWAY_LINGER_MS).unref();
  }

  /** Drops the connection now. */
  destroy(): void {
    this.#socket.destroy();
    this.#teardown();
  }

  // ---- used by SpdyStream ----

  sendReply(id: number, headers: SpdyHeaders, fin: boolean): void {
    this.#send(encodeFrame({ type: 'syn_reply', streamId: id, fin, block: this.#codec.encode(headers) }));
  }

  sendReset(id: number, status: number): void {
    this.#send(encodeFrame({ type: 'rst_stream', streamId: id, status }));
  }

  sendData(id: number, data: Buffer, fin: boolean, cb: (err?: Error | null) => void): void {
    if (this.#closed) return cb(new Error('SPDY session is closed'));
    const max = this.#opts.maxSendFrameBytes;
    let ok = true;
    if (data.length === 0) {
      ok = this.#socket.write(dataFrameHeader(id, 0, fin));
    } else {
      for (let off = 0; off < data.length; off += max) {
        const piece = data.subarray(off, Math.min(off + max, data.length));
        const last = off + max >= data.length;
        this.#socket.write(dataFrameHeader(id, piece.length, fin && last));
        ok = this.#socket.write(piece);
      }
    }
    if (ok) cb();
    else this.#drainWaiters.push(() => cb(this.#closed ? new Error('SPDY session is closed') : null));
  }

  streamDone(id: number): void {
    this.#streams.delete(id);
    this.#unblock(id);
  }

  blockOn(id: number): void {
    this.#blocked.add(id);
    this.#socket.pause();
  }

  #unblock(id: number): void {
    if (this.#blocked.delete(id) && this.#blocked.size === 0 && !this.#closed) this.#socket.resume();
  }

  unblock(id: number): void {
    this.#unblock(id);
  }

  // ---- internals ----

  #send(frame: Buffer): void {
    if (this.#closed || this.#socket.destroyed || this.#socket.writableEnded) return;
    this.#socket.write(frame);
  }

  #flushDrainWaiters(): void {
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const w of waiters) w();
  }

  #onData(chunk: Buffer): void {
    if (this.#closed) return;
    let frames: Frame[];
    try {
      frames = this.#decoder.push(chunk);
      for (const f of frames) {
        if (this.#closed) return;
        this.#onFrame(f);
      }
    } catch (err) {
      if (err instanceof SpdyProtocolError && err.streamId !== undefined && !(err.message.startsWith('header block'))) {
        this.sendReset(err.streamId, err.status);
        this.#streams.get(err.streamId)?.destroy();
        // The decoder cannot resynchronise after an oversized frame: end the session.
        if (err.status === RstStatus.FrameTooLarge) this.#fail(err);
        return;
      }
      this.#fail(err as Error);
    }
  }

  #fail(err: Error): void {
    if (this.#closed) return;
    const status = err instanceof SpdyProtocolError ? GoAwayStatus.ProtocolError : GoAwayStatus.InternalError;
    this.#send(encodeFrame({ type: 'goaway', lastGoodStreamId: this.#lastPeerId, status }));
    this.#socket.end();
    this.emit('protocolError', err);
    this.#teardown();
  }

  #onFrame(f: Frame): void {
    switch (f.type) {
      case 'syn_stream': {
        // Always decode: the shared zlib context must see every block.
        const headers = this.#codec.decode(f.block, f.streamId);
        const peerMakesOdd = this.#opts.server;
        if ((f.streamId % 2 === 1) !== peerMakesOdd || f.streamId <= this.#lastPeerId) {
          throw new SpdyProtocolError(`stream id ${f.streamId} is out of order or of the wrong parity`);
        }
        this.#lastPeerId = f.streamId;
        if (this.#goingAway || this.#streams.size >= this.#opts.maxStreams) {
          this.sendReset(f.streamId, RstStatus.RefusedStream);
          return;
        }
        const stream = new SpdyStream(this, f.streamId, headers);
        this.#streams.set(f.streamId, stream);
        if (f.fin) stream.pushRemote(null);
        this.emit('stream', stream);
        return;
      }
      case 'syn_reply': {
        const headers = this.#codec.decode(f.block, f.streamId);
        const s = this.#streams.get(f.streamId);
        if (s) {
          s.onReply(headers);
          if (f.fin) s.pushRemote(null);
        }
        return;
      }
      case 'headers': {
        const headers = this.#codec.decode(f.block, f.streamId);
        const s = this.#streams.get(f.streamId);
        if (s) {
          s.emit('headers', headers);
          if (f.fin) s.pushRemote(null);
        }
        return;
      }
      case 'data': {
        const s = this.#streams.get(f.streamId);
        if (!s) return; // data racing a reset or close: drop it
        if (f.data.length > 0) s.pushRemote(f.data);
        if (f.fin) s.pushRemote(null);
        return;
      }
      case 'rst_stream': {
        const s = this.#streams.get(f.streamId);
        if (s) s.onReset(f.status);
        return;
      }
      case 'ping': {
        // Our own pings come back with our parity; the peer's are echoed.
        const ours = (f.id % 2 === 0) === this.#opts.server;
        if (ours) {
          const w = this.#pingWaiters.get(f.id);
          this.#pingWaiters.delete(f.id);
          w?.();
        } else {
          this.#send(encodeFrame({ type: 'ping', id: f.id }));
        }
        return;
      }
      case 'goaway':
        this.#goingAway = true;
        this.emit('goaway', f.status);
        return;
      case 'settings':
      case 'window_update':
      case 'unknown':
        return;
    }
  }

  #teardown(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const s of [...this.#streams.values()]) s.destroy();
    this.#streams.clear();
    this.#blocked.clear();
    this.#flushDrainWaiters();
    this.#pingWaiters.clear();
    this.#codec.close();
    // After end() the GOAWAY may still be queued: give it a moment to leave rather
    // than cutting it off, but never keep a dead peer's socket for long.
    if (!this.#socket.destroyed) {
      if (this.#socket.writableEnded) setTimeout(() => this.#socket.destroy(), 2000).unref();
      else this.#socket.destroy();
    }
    this.emit('close');
  }
}

/**
 * One SPDY stream as a Node Duplex: readable = the peer's DATA, writable = ours.
 * end() sends an empty DATA frame with FIN (a half-close, like the Go client's Close()).
 */
export class SpdyStream extends Duplex {
  readonly id: number;
  /** Headers of the SYN_STREAM that opened it. */
  readonly headers: SpdyHeaders;
  replyHeaders: SpdyHeaders | undefined;
  readonly #session: SpdySession;
  #replied = false;
  #localFin = false;
  #remoteFin = false;
  #reset = false;

  constructor(session: SpdySession, id: number, headers: SpdyHeaders) {
    super({ allowHalfOpen: true, readableHighWaterMark: 256 * 1024, writableHighWaterMark: 64 * 1024 });
    this.#session = session;
    this.id = id;
    this.headers = headers;
  }

  /** Sends SYN_REPLY (once). */
  reply(headers: SpdyHeaders = {}): void {
    if (this.#replied || this.#reset || this.destroyed) return;
    this.#replied = true;
    this.#session.sendReply(this.id, headers, false);
  }

  /** Aborts the stream with RST_STREAM. */
  reset(status: number = RstStatus.Cancel): void {
    if (!this.#reset && !this.#session.closed) this.#session.sendReset(this.id, status);
    this.#reset = true;
    this.destroy();
  }

  get wasReset(): boolean {
    return this.#reset;
  }

  markLocalFin(): void {
    this.#localFin = true;
    this.#maybeDone();
  }

  onReply(headers: SpdyHeaders): void {
    this.replyHeaders = headers;
    this.emit('reply', headers);
  }

  onReset(status: number): void {
    this.#reset = true;
    this.emit('reset', status);
    this.destroy();
  }

  pushRemote(data: Buffer | null): void {
    if (this.#remoteFin) return;
    if (data === null) {
      this.#remoteFin = true;
      this.push(null);
      this.#maybeDone();
      return;
    }
    if (!this.push(data)) this.#session.blockOn(this.id);
  }

  override _read(): void {
    this.#session.unblock(this.id);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.#reset) return cb(new Error('stream was reset'));
    this.#session.sendData(this.id, chunk, false, cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (this.#reset || this.#localFin) return cb();
    this.#localFin = true;
    this.#session.sendData(this.id, Buffer.alloc(0), true, (err) => {
      cb(err);
      this.#maybeDone();
    });
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#session.streamDone(this.id);
    cb(err);
  }

  #maybeDone(): void {
    if (this.#localFin && this.#remoteFin) this.#session.streamDone(this.id);
  }
}
