import type { Logger } from 'pino';
import { headerValue } from './spdy/header-block.js';
import { RstStatus } from './spdy/frames.js';
import type { SpdySession, SpdyStream } from './spdy/session.js';
import type { ForwardedConnection } from '../core/remote-io.js';

const PAIR_TIMEOUT_MS = 30_000;

/**
 * Port-forward over SPDY (portforward.k8s.io): for every connection the client opens
 * an `error` stream and a `data` stream with the same `port` and `requestid`; once
 * both exist the data stream is joined to the port inside the pod. Failures are
 * written as text on the error stream. The session lasts until the client leaves.
 */
export function serveSpdyPortForward(
  log: Logger,
  session: SpdySession,
  dial: (conn: ForwardedConnection) => Promise<void>,
): void {
  const pending = new Map<string, { error?: SpdyStream; data?: SpdyStream; timer: NodeJS.Timeout }>();
  const aborter = new AbortController();
  session.on('close', () => {
    aborter.abort(new Error('client went away'));
    for (const p of pending.values()) clearTimeout(p.timer);
    pending.clear();
  });
  session.on('stream', (st: SpdyStream) => {
    st.on('error', () => {});
    const type = headerValue(st.headers, 'streamtype');
    const portText = headerValue(st.headers, 'port') ?? '';
    const port = Number(portText);
    if ((type !== 'error' && type !== 'data') || !/^\d+$/.test(portText) || port < 1 || port > 65535) {
      st.reply({});
      if (type === 'error' || type === 'data') st.end(`invalid port ${JSON.stringify(portText)}: want a number from 1 to 65535`);
      else st.reset(RstStatus.ProtocolError);
      return;
    }
    st.reply({});
    // Old clients send no requestid: the error stream came just before its data
    // stream (ids two apart, as Kubernetes pairs them).
    const rid = headerValue(st.headers, 'requestid') ?? String(type === 'error' ? st.id : st.id - 2);
    const key = `${port}/${rid}`;
    let p = pending.get(key);
    if (!p) {
      const timer = setTimeout(() => {
        const q = pending.get(key);
        pending.delete(key);
        q?.error?.reset(RstStatus.Cancel);
        q?.data?.reset(RstStatus.Cancel);
      }, PAIR_TIMEOUT_MS);
      timer.unref();
      p = { timer };
      pending.set(key, p);
    }
    if (p[type]) {
      st.reset(RstStatus.ProtocolError);
      return;
    }
    p[type] = st;
    if (!p.error || !p.data) return;
    clearTimeout(p.timer);
    pending.delete(key);
    const errorStream = p.error;
    const data = p.data;
    errorStream.resume();
    let failed = false;
    const conn: ForwardedConnection = {
      port,
      data,
      signal: aborter.signal,
      fail: (message) => {
        if (failed) return;
        failed = true;
        log.debug({ port, message }, 'port-forward connection failed');
        errorStream.end(message);
        data.end();
      },
    };
    void dial(conn).finally(() => {
      if (!errorStream.writableEnded) errorStream.end();
    });
  });
}
