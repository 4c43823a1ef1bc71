import { PassThrough, Writable } from 'node:stream';
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import { Channel, CLOSE_SIGNAL, exitCodeStatus, failureStatus, ResizeFeed, successStatus } from './protocols.js';
import type { RemoteCommandIO, SessionResult } from '../core/remote-io.js';
import type { StreamOptions } from './spdy-remote-command.js';

/** Bytes queued in the WebSocket before a channel's writer waits for the socket. */
const WS_HIGH_WATER = 1 << 20;

/**
 * remotecommand over WebSocket: every message starts with its channel (0 stdin,
 * 1 stdout, 2 stderr, 3 error, 4 resize). base64 variants send text: the channel as
 * an ASCII digit, then base64. v5 adds [255, channel] to close a channel, which is how
 * the client says "stdin is done"; v4 has no such signal.
 */
export function serveWsRemoteCommand(
  log: Logger,
  ws: WebSocket,
  protocol: string,
  opts: StreamOptions,
  run: (io: RemoteCommandIO) => Promise<SessionResult>,
): void {
  const base64 = protocol.includes('base64');
  const v5 = protocol === 'v5.channel.k8s.io';
  const aborter = new AbortController();
  let finished = false;
  const stdin = opts.stdin ? new PassThrough({ highWaterMark: 256 * 1024 }) : undefined;
  const sizes = new ResizeFeed((err) => log.debug({ err }, 'bad resize message ignored'));

  const send = (channel: number, data: Buffer, cb?: (err?: Error) => void) => {
    if (ws.readyState !== ws.OPEN) return cb?.(new Error('websocket closed'));
    if (base64) ws.send(String.fromCharCode(48 + channel) + data.toString('base64'), cb);
    else ws.send(Buffer.concat([Buffer.from([channel]), data]), { binary: true }, cb);
  };
  const channelWriter = (channel: number) =>
    new Writable({
      highWaterMark: 64 * 1024,
      write(chunk: Buffer, _enc, cb) {
        // Wait for the socket only when a lot is queued: one callback per chunk would
        // serialise the stream on round trips through the event loop.
        if (ws.bufferedAmount < WS_HIGH_WATER) {
          send(channel, chunk);
          cb(ws.readyState === ws.OPEN ? null : new Error('websocket closed'));
        } else send(channel, chunk, (err) => cb(err ?? null));
      },
    });
  const stdout = opts.stdout ? channelWriter(Channel.stdout) : undefined;
  const stderr = opts.stderr && !opts.tty ? channelWriter(Channel.stderr) : undefined;
  stdout?.on('error', () => {});
  stderr?.on('error', () => {});

  ws.on('message', (raw: Buffer, isBinary: boolean) => {
    let msg: Buffer;
    if (base64 && !isBinary) {
      const text = raw.toString();
      if (text.length === 0) return;
      msg = Buffer.concat([Buffer.from([text.charCodeAt(0) - 48]), Buffer.from(text.slice(1), 'base64')]);
    } else msg = raw;
    if (msg.length === 0) return;
    const channel = msg[0]!;
    const data = msg.subarray(1);
    if (channel === CLOSE_SIGNAL && v5) {
      if (data[0] === Channel.stdin) stdin?.end();
      return;
    }
    if (channel === Channel.stdin && stdin && !stdin.writableEnded) {
      if (data.length > 0 && !stdin.write(data)) {
        // Backpressure: stop reading the socket until the process takes its input.
        ws.pause();
        stdin.once('drain', () => ws.resume());
      }
    } else if (channel === Channel.resize) {
      sizes.push(data);
    }
  });
  ws.on('close', () => {
    // Always: a runner may already be finishing because a write failed, and its
    // process must still be told the client is gone (abort is idempotent).
    aborter.abort(new Error('client went away'));
    stdin?.end();
  });
  ws.on('error', () => {});

  const finish = async (result: SessionResult): Promise<void> => {
    if (finished) return;
    finished = true;
    if ('exitCode' in result && result.exitCode === 0) result = { ok: true };
    await Promise.all(
      [stdout, stderr]
        .filter((w): w is Writable => w !== undefined)
        .map((w) => new Promise<void>((r) => {
          w.once('error', () => r());
          w.end(() => r());
        })),
    );
    let msg = '';
    if ('exitCode' in result) msg = exitCodeStatus(result.exitCode);
    else if ('error' in result) msg = failureStatus(result.error);
    else msg = successStatus();
    await new Promise<void>((r) => send(Channel.error, Buffer.from(msg), () => r()));
    if (ws.readyState === ws.OPEN) ws.close(1000);
  };

  const io: RemoteCommandIO = {
    tty: opts.tty,
    stdin,
    stdout,
    stderr,
    signal: aborter.signal,
    onResize: (cb) => sizes.subscribe(cb),
    finish,
  };
  void (async () => {
    let result: SessionResult;
    try {
      result = await run(io);
    } catch (err) {
      result = { error: (err as Error).message };
    }
    await finish(result);
  })();
}
