import http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import { SpdySession, type SpdyStream } from '../../src/streams/spdy/session.js';

/** What an HTTP upgrade attempt got: a SPDY session, or the refusal. */
export type UpgradeResult =
  | { ok: true; session: SpdySession; protocol: string; socket: Duplex }
  | { ok: false; status: number; headers: http.IncomingHttpHeaders; body: string };

/** Upgrades to SPDY/3.1 the way client-go does (GET with X-Stream-Protocol-Version lines). */
export function spdyUpgrade(url: string, protocols: string[]): Promise<UpgradeResult> {
  const u = new URL(url);
  const mod = u.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(u, {
      method: 'POST',
      headers: { Connection: 'Upgrade', Upgrade: 'SPDY/3.1', 'X-Stream-Protocol-Version': protocols },
      rejectUnauthorized: false,
    });
    req.on('upgrade', (res, socket, head) => {
      const session = new SpdySession(socket, { server: false });
      session.feed(head);
      resolve({ ok: true, session, protocol: String(res.headers['x-stream-protocol-version'] ?? ''), socket });
    });
    req.on('response', (res) => {
      let body = '';
      res.on('data', (b: Buffer) => (body += b.toString()));
      res.on('end', () => resolve({ ok: false, status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

export interface ExecOutcome {
  stdout: Buffer;
  stderr: Buffer;
  /** What the error stream carried (v4: JSON status text). */
  error: string;
  protocol: string;
}

export interface ExecClientOptions {
  stdin?: Buffer | AsyncIterable<Buffer> | null;
  stdout?: boolean;
  stderr?: boolean;
  tty?: boolean;
  protocols?: string[];
  /** Terminal sizes sent on the resize stream right after it opens. */
  resize?: { width: number; height: number }[];
  /** Called with stdout bytes as they arrive. */
  onStdout?: (b: Buffer) => void;
}

/**
 * A remotecommand client over SPDY that behaves like client-go's: error stream
 * first, then stdin/stdout/stderr/resize; stdin half-closed when done; reads stdout
 * and stderr to their end, then the error stream.
 */
export async function spdyExec(url: string, o: ExecClientOptions = {}): Promise<ExecOutcome> {
  const up = await spdyUpgrade(url, o.protocols ?? ['v4.channel.k8s.io', 'v3.channel.k8s.io', 'v2.channel.k8s.io', 'channel.k8s.io']);
  if (!up.ok) throw new Error(`upgrade refused: ${up.status} ${up.body}`);
  const { session, protocol } = up;
  const open = (type: string) => session.openStream({ streamtype: [type] });
  const errorStream = open('error');
  errorStream.end();
  const stdin = o.stdin !== undefined && o.stdin !== null ? open('stdin') : undefined;
  const stdout = o.stdout !== false ? open('stdout') : undefined;
  const stderr = o.stderr && !o.tty ? open('stderr') : undefined;
  const resize = o.tty && protocol !== 'v2.channel.k8s.io' && protocol !== 'channel.k8s.io' ? open('resize') : undefined;
  stdout?.end();
  stderr?.end();
  for (const s of o.resize ?? []) resize?.write(JSON.stringify({ Width: s.width, Height: s.height }) + '\n');
  const read = (s: SpdyStream | undefined, each?: (b: Buffer) => void) =>
    new Promise<Buffer>((resolve) => {
      if (!s) return resolve(Buffer.alloc(0));
      const parts: Buffer[] = [];
      s.on('data', (b: Buffer) => {
        parts.push(b);
        each?.(b);
      });
      s.on('end', () => resolve(Buffer.concat(parts)));
      s.on('close', () => resolve(Buffer.concat(parts)));
      s.on('error', () => resolve(Buffer.concat(parts)));
    });
  const outP = read(stdout, o.onStdout);
  const errP = read(stderr);
  const statusP = read(errorStream);
  if (stdin && o.stdin) {
    if (Buffer.isBuffer(o.stdin)) stdin.end(o.stdin);
    else {
      for await (const chunk of o.stdin) {
        if (stdin.destroyed) break; // the server is done with us
        if (!stdin.write(chunk)) {
          await new Promise<void>((r) => {
            const done = () => {
              stdin.off('drain', done);
              stdin.off('close', done);
              r();
            };
            stdin.on('drain', done);
            stdin.on('close', done);
          });
        }
      }
      if (!stdin.destroyed) stdin.end();
    }
  }
  const [out, err, status] = await Promise.all([outP, errP, statusP]);
  session.destroy();
  return { stdout: out, stderr: err, error: status.toString(), protocol };
}

/** One port-forward connection through an existing SPDY session. */
export function spdyForward(session: SpdySession, port: number, requestId: number): { data: SpdyStream; error: Promise<string> } {
  const error = session.openStream({ streamtype: ['error'], port: [String(port)], requestid: [String(requestId)] });
  error.end();
  const data = session.openStream({ streamtype: ['data'], port: [String(port)], requestid: [String(requestId)] });
  const text = new Promise<string>((resolve) => {
    let s = '';
    error.on('data', (b: Buffer) => (s += b.toString()));
    error.on('end', () => resolve(s));
    error.on('close', () => resolve(s));
  });
  return { data, error: text };
}

/**
 * Attaches over SPDY (v4.channel.k8s.io) with stdin and stdout, writes `line`, and
 * resolves with what came out once it contains `expect`; then leaves (the container
 * keeps running). Rejects if the upgrade is refused.
 */
export async function spdyAttachSay(url: string, line: string, expect: string): Promise<string> {
  const up = await spdyUpgrade(url, ['v4.channel.k8s.io']);
  if (!up.ok) throw new Error(`attach upgrade refused: ${up.status} ${up.body}`);
  up.session.openStream({ streamtype: ['error'] }).end();
  const stdin = up.session.openStream({ streamtype: ['stdin'] });
  const stdout = up.session.openStream({ streamtype: ['stdout'] });
  stdout.end();
  let out = '';
  const seen = new Promise<void>((resolve) =>
    stdout.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes(expect)) resolve();
    }),
  );
  stdin.write(line);
  await seen;
  up.session.destroy();
  return out;
}
