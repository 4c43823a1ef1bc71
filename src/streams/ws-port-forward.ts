import { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import type { ForwardedConnection } from '../core/remote-io.js';

/**
 * Port-forward over the WebSocket channel protocol (what kubectl spoke to the API
 * server before SPDY tunnelling): the ports come with the URL; for port i, channel
 * 2i carries data and 2i+1 errors, and each channel's first server message is the
 * port as two little-endian bytes. One connection per port per WebSocket.
 */
export function serveWsPortForward(
  log: Logger,
  ws: WebSocket,
  protocol: string,
  ports: readonly number[],
  dial: (conn: ForwardedConnection) => Promise<void>,
): void {
  const base64 = protocol.includes('base64');
  const aborter = new AbortController();
  const send = (channel: number, data: Buffer, cb?: (err?: Error) => void) => {
    if (ws.readyState !== ws.OPEN) return cb?.(new Error('websocket closed'));
    if (base64) ws.send(String.fromCharCode(48 + channel) + data.toString('base64'), cb);
    else ws.send(Buffer.concat([Buffer.from([channel]), data]), { binary: true }, cb);
  };
  const inputs: Duplex[] = [];
  let open = ports.length;
  ports.forEach((port, i) => {
    const dataCh = 2 * i;
    const errCh = 2 * i + 1;
    const portBytes = Buffer.alloc(2);
    portBytes.writeUInt16LE(port);
    send(dataCh, portBytes);
    send(errCh, portBytes);
    const data = new Duplex({
      read() {
        ws.resume();
      },
      write(chunk: Buffer, _enc, cb) {
        send(dataCh, chunk, (err) => cb(err ?? null));
      },
      final(cb) {
        cb();
      },
    });
    data.on('error', () => {});
    inputs[dataCh] = data;
    const conn: ForwardedConnection = {
      port,
      data,
      signal: aborter.signal,
      fail: (message) => send(errCh, Buffer.from(message)),
    };
    void dial(conn).finally(() => {
      if (--open === 0 && ws.readyState === ws.OPEN) ws.close(1000);
    });
  });
  ws.on('message', (raw: Buffer, isBinary: boolean) => {
    let msg = raw;
    if (base64 && !isBinary) {
      const text = raw.toString();
      if (!text) return;
      msg = Buffer.concat([Buffer.from([text.charCodeAt(0) - 48]), Buffer.from(text.slice(1), 'base64')]);
    }
    if (msg.length < 1) return;
    const d = inputs[msg[0]!];
    if (d && msg.length > 1 && !d.push(msg.subarray(1))) ws.pause();
  });
  ws.on('close', () => {
    aborter.abort(new Error('client went away'));
    for (const d of inputs) d?.push(null);
  });
  ws.on('error', (err) => log.debug({ err }, 'port-forward websocket error'));
}
