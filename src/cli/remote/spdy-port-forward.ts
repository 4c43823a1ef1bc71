import http from 'node:http';
import type { Socket } from 'node:net';
import { SPDY_PORTFORWARD_PROTOCOLS } from '../../streams/protocols.js';
import { SpdySession } from '../../streams/spdy/session.js';

/**
 * The client side of port-forward over SPDY/3.1 (what kubectl and crictl speak):
 * one session per URL; per forwarded connection an error stream and a data stream
 * naming the port and a request id.
 */
export async function openPortForward(url: string): Promise<SpdySession> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request(u, {
      method: 'POST',
      headers: { Connection: 'Upgrade', Upgrade: 'SPDY/3.1', 'X-Stream-Protocol-Version': [...SPDY_PORTFORWARD_PROTOCOLS] },
    });
    req.on('upgrade', (_res, socket, head) => {
      const session = new SpdySession(socket, { server: false });
      session.feed(head);
      resolve(session);
    });
    req.on('response', (res) => {
      res.resume();
      reject(new Error(`the streaming server refused port-forward: HTTP ${res.statusCode}`));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Carries one local connection to `port` in the pod; `onError` gets what the runtime says went wrong. */
export function forwardConnection(session: SpdySession, local: Socket, port: number, requestId: number, onError: (msg: string) => void): void {
  const headers = { port: [String(port)], requestid: [String(requestId)] };
  const error = session.openStream({ streamtype: ['error'], ...headers });
  error.end();
  let text = '';
  error.on('data', (b: Buffer) => (text += b.toString()));
  error.on('end', () => {
    if (text !== '') onError(text);
  });
  error.on('error', () => {});
  const data = session.openStream({ streamtype: ['data'], ...headers });
  data.on('error', () => local.destroy());
  local.on('error', () => data.destroy());
  local.pipe(data);
  data.pipe(local);
  data.on('close', () => local.destroy());
  local.on('close', () => {
    if (!data.destroyed) data.end();
  });
}
