import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import WebSocket from 'ws';

export interface WsExecOutcome {
  stdout: Buffer;
  stderr: Buffer;
  error: string;
  protocol: string;
  closeCode: number;
}

/**
 * A remotecommand client over WebSocket like client-go's v5 executor: channel byte
 * first, [255, 0] to close stdin, the error channel's JSON at the end, close 1000.
 */
export async function wsExec(
  url: string,
  o: { protocols?: string[]; stdin?: Buffer; resize?: { width: number; height: number }[]; closeStdin?: boolean } = {},
): Promise<WsExecOutcome> {
  const ws = new WebSocket(url.replace(/^http/, 'ws'), o.protocols ?? ['v5.channel.k8s.io'], { rejectUnauthorized: false });
  // Listen before 'open': the server may speak in the same packet as its handshake.
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let error = '';
  ws.on('message', (raw: Buffer, isBinary: boolean) => {
    let m = raw;
    if (!isBinary) {
      const t = raw.toString();
      m = Buffer.concat([Buffer.from([t.charCodeAt(0) - 48]), Buffer.from(t.slice(1), 'base64')]);
    }
    if (m[0] === 1) out.push(m.subarray(1));
    else if (m[0] === 2) err.push(m.subarray(1));
    else if (m[0] === 3) error += m.subarray(1).toString();
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
  });
  const base64 = ws.protocol.includes('base64');
  const send = (ch: number, data: Buffer) =>
    base64 ? ws.send(String.fromCharCode(48 + ch) + data.toString('base64')) : ws.send(Buffer.concat([Buffer.from([ch]), data]));
  const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
  for (const s of o.resize ?? []) send(4, Buffer.from(JSON.stringify({ Width: s.width, Height: s.height })));
  if (o.stdin) {
    for (let off = 0; off < o.stdin.length; off += 32 * 1024) send(0, o.stdin.subarray(off, off + 32 * 1024));
  }
  if (o.closeStdin !== false) ws.send(Buffer.from([255, 0]));
  const closeCode = await closed;
  return { stdout: Buffer.concat(out), stderr: Buffer.concat(err), error, protocol: ws.protocol, closeCode };
}

/**
 * Opens a WebSocket with any sub-protocol string, including client-go's
 * "SPDY/3.1+portforward.k8s.io" that the ws client refuses as a token: the handshake
 * is done by hand, then ws takes over the socket as a client (masking its frames).
 */
export function wsConnectRaw(url: string, protocol: string): Promise<{ ws: WebSocket; protocol: string }> {
  const u = new URL(url.replace(/^ws/, 'http'));
  const key = randomBytes(16).toString('base64');
  return new Promise((resolve, reject) => {
    const req = http.request(u, {
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Key': key,
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Protocol': protocol,
      },
    });
    req.on('upgrade', (res, socket, head) => {
      const accept = createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
      if (res.headers['sec-websocket-accept'] !== accept) return reject(new Error('bad Sec-WebSocket-Accept'));
      const ws = new WebSocket(null as unknown as string, undefined, { autoPong: true } as WebSocket.ClientOptions);
      (ws as unknown as { _isServer: boolean })._isServer = false;
      (ws as unknown as { setSocket(s: unknown, h: Buffer, o: object): void }).setSocket(socket, head, { maxPayload: 0, skipUTF8Validation: false });
      resolve({ ws, protocol: String(res.headers['sec-websocket-protocol'] ?? '') });
    });
    req.on('response', (res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    req.on('error', reject);
    req.end();
  });
}
