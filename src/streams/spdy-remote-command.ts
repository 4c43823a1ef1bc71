import type { Logger } from 'pino';
import { headerValue } from './spdy/header-block.js';
import { RstStatus } from './spdy/frames.js';
import type { SpdySession, SpdyStream } from './spdy/session.js';
import { exitCodeStatus, failureStatus, ResizeFeed, successStatus } from './protocols.js';
import type { RemoteCommandIO, SessionResult } from '../core/remote-io.js';

export interface StreamOptions {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
}

/** How long the client has to open every stream it announced (kubelet's default). */
const STREAM_CREATION_TIMEOUT_MS = 30_000;

type Kind = 'error' | 'stdin' | 'stdout' | 'stderr' | 'resize';

/**
 * remotecommand over SPDY (exec and attach): the client opens one stream per
 * `streamtype`; once every expected one is here the session runs. Versions differ in
 * what the error stream carries (v4: a JSON Status with the exit code; older: text)
 * and whether a resize stream exists (v3+ with a TTY).
 */
export function serveSpdyRemoteCommand(
  log: Logger,
  session: SpdySession,
  protocol: string,
  opts: StreamOptions,
  run: (io: RemoteCommandIO) => Promise<SessionResult>,
): void {
  const v4 = protocol === 'v4.channel.k8s.io';
  const resizable = opts.tty && (v4 || protocol === 'v3.channel.k8s.io');
  const expected = new Set<Kind>(['error']);
  if (opts.stdin) expected.add('stdin');
  if (opts.stdout) expected.add('stdout');
  if (opts.stderr && !opts.tty) expected.add('stderr');
  if (resizable) expected.add('resize');
  const streams = new Map<Kind, SpdyStream>();
  const aborter = new AbortController();
  let started = false;
  let finished = false;

  const timer = setTimeout(() => {
    log.warn({ missing: [...expected].filter((k) => !streams.has(k)) }, 'streaming client did not open all its streams in time');
    session.goAway();
  }, STREAM_CREATION_TIMEOUT_MS);
  timer.unref();

  session.on('close', () => {
    clearTimeout(timer);
    // Always (idempotent): whatever still runs for this client must stop.
    aborter.abort(new Error('client went away'));
  });

  session.on('stream', (st: SpdyStream) => {
    st.reply({});
    const kind = headerValue(st.headers, 'streamtype') as Kind | undefined;
    if (!kind || !expected.has(kind) || streams.has(kind) || started) {
      log.debug({ streamtype: kind }, 'unexpected stream refused');
      st.reset(RstStatus.RefusedStream);
      return;
    }
    st.on('error', () => {});
    // Streams we only write to still get the client's FIN: read them to see it.
    if (kind !== 'stdin' && kind !== 'resize') st.resume();
    streams.set(kind, st);
    if (streams.size === expected.size) {
      started = true;
      clearTimeout(timer);
      void start();
    }
  });

  async function start(): Promise<void> {
    const sizes = new ResizeFeed((err) => log.debug({ err }, 'bad resize message ignored'));
    streams.get('resize')?.on('data', (b: Buffer) => sizes.push(b));
    const io: RemoteCommandIO = {
      tty: opts.tty,
      stdin: streams.get('stdin'),
      stdout: streams.get('stdout'),
      stderr: streams.get('stderr'),
      signal: aborter.signal,
      onResize: (cb) => sizes.subscribe(cb),
      finish: (r) => finish(r),
    };
    let result: SessionResult;
    try {
      result = await run(io);
    } catch (err) {
      result = { error: (err as Error).message };
    }
    await finish(result);
  }

  async function finish(result: SessionResult): Promise<void> {
    if (finished) return;
    finished = true;
    if ('exitCode' in result && result.exitCode === 0) result = { ok: true };
    // Nothing reads stdin/resize any more: drop them so input the client still sends
    // is discarded instead of pausing the connection (and its FIN) behind them.
    streams.get('stdin')?.destroy();
    streams.get('resize')?.destroy();
    const ends = (['stdout', 'stderr'] as const)
      .map((k) => streams.get(k))
      .filter((s): s is SpdyStream => s !== undefined && !s.destroyed)
      .map((s) => new Promise<void>((r) => {
        s.once('finish', r);
        s.once('close', r);
        s.end();
      }));
    await Promise.all(ends);
    const errStream = streams.get('error');
    if (errStream && !errStream.destroyed) {
      let msg = '';
      if ('exitCode' in result) msg = v4 ? exitCodeStatus(result.exitCode) : `command terminated with non-zero exit code: exit status ${result.exitCode}`;
      else if ('error' in result) msg = v4 ? failureStatus(result.error) : result.error;
      else if (v4) msg = successStatus();
      await new Promise<void>((r) => {
        errStream.once('close', r);
        errStream.end(msg, () => r());
      });
    }
    session.goAway();
  }
}
