import WebSocket from 'ws';
import { CLOSE_SIGNAL, Channel, WS_EXEC_PROTOCOLS } from '../../streams/protocols.js';

export interface RemoteIo {
  stdin?: NodeJS.ReadableStream | undefined;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /** The terminal's size now; undefined when there is no TTY. */
  size?: (() => { width: number; height: number }) | undefined;
  /** Calls back on each terminal resize; returns the unsubscribe. */
  onResize?: ((cb: () => void) => () => void) | undefined;
}

/**
 * The client side of an exec or attach over WebSocket, remotecommand v5 (what crictl
 * and kubectl speak): a channel byte before each message, stdin EOF as
 * [255, 0], the error channel's metav1.Status at the end. Resolves with the exit code
 * the status carries (0 on Success).
 */
export async function wsRemoteCommand(url: string, io: RemoteIo): Promise<number> {
  const ws = new WebSocket(url.replace(/^http/, 'ws'), [...WS_EXEC_PROTOCOLS]);
  let statusText = '';
  ws.on('message', (raw: Buffer, isBinary: boolean) => {
    let m = raw;
    if (!isBinary) {
      const t = raw.toString();
      m = Buffer.concat([Buffer.from([t.charCodeAt(0) - 48]), Buffer.from(t.slice(1), 'base64')]);
    }
    if (m.length === 0) return;
    const data = m.subarray(1);
    if (m[0] === Channel.stdout) io.stdout.write(data);
    else if (m[0] === Channel.stderr) io.stderr.write(data);
    else if (m[0] === Channel.error) statusText += data.toString();
  });
  const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`the streaming server refused the session: HTTP ${res.statusCode}`)));
  });
  ws.on('error', () => {});
  const base64 = ws.protocol.includes('base64');
  const send = (ch: number, data: Buffer) => {
    if (ws.readyState !== WebSocket.OPEN) return;
    if (base64) ws.send(String.fromCharCode(48 + ch) + data.toString('base64'));
    else ws.send(Buffer.concat([Buffer.from([ch]), data]));
  };
  const sendSize = () => {
    const s = io.size?.();
    if (s) send(Channel.resize, Buffer.from(JSON.stringify({ Width: s.width, Height: s.height })));
  };
  sendSize();
  const unsubscribe = io.onResize?.(sendSize);
  const onData = (b: Buffer | string) => send(Channel.stdin, Buffer.isBuffer(b) ? b : Buffer.from(b));
  const onEnd = () => {
    // v5's close signal: stdin is done, the rest of the session goes on.
    if (ws.readyState === WebSocket.OPEN && ws.protocol === 'v5.channel.k8s.io') ws.send(Buffer.from([CLOSE_SIGNAL, Channel.stdin]));
  };
  io.stdin?.on('data', onData);
  io.stdin?.once('end', onEnd);
  try {
    await closed;
  } finally {
    unsubscribe?.();
    io.stdin?.off('data', onData);
    io.stdin?.off('end', onEnd);
  }
  return exitCodeOf(statusText);
}

/** metav1.Status → exit code: Success 0; NonZeroExitCode its ExitCode cause; other failures 1. */
export function exitCodeOf(statusText: string): number {
  if (statusText.trim() === '') return 0;
  try {
    const st = JSON.parse(statusText) as { status?: string; message?: string; details?: { causes?: { reason?: string; message?: string }[] } };
    if (st.status === 'Success') return 0;
    const code = st.details?.causes?.find((c) => c.reason === 'ExitCode')?.message;
    if (code !== undefined && /^\d+$/.test(code)) return Number(code);
    throw new Error(st.message ?? statusText);
  } catch (err) {
    if (err instanceof SyntaxError) throw new Error(statusText);
    throw err;
  }
}
