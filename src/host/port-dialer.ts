import { spawn } from 'node:child_process';
import net from 'node:net';
import type { ForwardedConnection } from '../core/remote-io.js';

/**
 * Connects one forwarded connection to 127.0.0.1:<port> inside the pod's network
 * namespace. Nothing from the container image is used: `nsenter --net` runs the
 * node's socat inside the pinned namespace (dockershim did the same), one process per
 * connection, piping bytes with backpressure. -t lets the other direction finish after
 * one side half-closes (socat's default gives it only half a second). Pods on the
 * host network are dialled directly.
 */
export function dialInPod(netnsPath: string | undefined, conn: ForwardedConnection): Promise<void> {
  return netnsPath === undefined ? dialHost(conn) : dialNetns(netnsPath, conn);
}

function dialNetns(netnsPath: string, conn: ForwardedConnection): Promise<void> {
  return new Promise((resolve) => {
    // An abort listener added after the session ended would never fire.
    if (conn.signal.aborted) return resolve();
    const child = spawn('nsenter', [`--net=${netnsPath}`, 'socat', '-b', '131072', '-t', '86400', 'STDIO', `TCP4:127.0.0.1:${conn.port}`], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-2000)));
    child.stdin.on('error', () => {});
    conn.data.on('error', () => child.kill('SIGKILL'));
    // A connection the client reset (or that was destroyed) ends without an error and
    // without EOF: socat would hold its pod connection until the whole session ends.
    // After a normal end both ways socat has exited already.
    conn.data.on('close', () => child.kill('SIGKILL'));
    conn.data.pipe(child.stdin);
    child.stdout.pipe(conn.data);
    const onAbort = () => child.kill('SIGKILL');
    conn.signal.addEventListener('abort', onAbort, { once: true });
    child.once('error', (err) => {
      conn.fail(`cannot run nsenter/socat to reach port ${conn.port}: ${err.message}`);
    });
    child.once('close', (code, signal) => {
      conn.signal.removeEventListener('abort', onAbort);
      if (code !== 0 && !conn.signal.aborted) {
        const why = stderr.match(/E (connect\([^)]*\)[^\n]*|[^\n]*)/)?.[1] ?? (signal ? `killed by ${signal}` : `exit code ${code}`);
        conn.fail(`error forwarding port ${conn.port} to pod: ${why.trim()}`);
      }
      resolve();
    });
  });
}

function dialHost(conn: ForwardedConnection): Promise<void> {
  return new Promise((resolve) => {
    if (conn.signal.aborted) return resolve();
    const s = net.connect({ host: '127.0.0.1', port: conn.port, allowHalfOpen: true });
    const onAbort = () => s.destroy();
    conn.signal.addEventListener('abort', onAbort, { once: true });
    conn.data.on('close', () => s.destroy());
    s.once('connect', () => {
      conn.data.pipe(s);
      s.pipe(conn.data);
    });
    s.once('error', (err) => conn.fail(`error forwarding port ${conn.port}: ${err.message}`));
    s.once('close', () => {
      conn.signal.removeEventListener('abort', onAbort);
      resolve();
    });
  });
}
