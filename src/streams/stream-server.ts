import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { createWebSocketStream, WebSocketServer, type WebSocket } from 'ws';
import { failedPrecondition } from '../core/errors.js';
import { SpdySession } from './spdy/session.js';
import {
  HEADER_ACCEPTED_VERSIONS,
  negotiate,
  SPDY_EXEC_PROTOCOLS,
  SPDY_PORTFORWARD_PROTOCOLS,
  WS_EXEC_PROTOCOLS,
  WS_PORTFORWARD_CHANNEL_PROTOCOLS,
  WS_SPDY_TUNNEL_PREFIX,
} from './protocols.js';
import type { ForwardedConnection, RemoteCommandIO, SessionResult } from '../core/remote-io.js';
import { serveSpdyPortForward } from './spdy-port-forward.js';
import { serveSpdyRemoteCommand, type StreamOptions } from './spdy-remote-command.js';
import type { TokenStore } from './token-store.js';
import { serveWsPortForward } from './ws-port-forward.js';
import { serveWsRemoteCommand } from './ws-remote-command.js';

/** What a token stands for: the checked request, replayed when the client connects. */
export type StreamRequest =
  | ({ kind: 'exec'; containerId: string; cmd: string[] } & StreamOptions)
  | ({ kind: 'attach'; containerId: string } & StreamOptions)
  | { kind: 'portforward'; podSandboxId: string; ports: number[] };

/** The work behind a session, looked up again at connect time (state may have moved on). */
export interface StreamBackends {
  run(log: Logger, req: Extract<StreamRequest, { kind: 'exec' | 'attach' }>, io: RemoteCommandIO): Promise<SessionResult>;
  dial(log: Logger, req: Extract<StreamRequest, { kind: 'portforward' }>, conn: ForwardedConnection): Promise<void>;
}

export interface StreamServerOptions {
  address: string;
  port: number;
  tlsCert: string | undefined;
  tlsKey: string | undefined;
  /** Largest WebSocket message accepted. */
  maxWsMessageBytes?: number;
  /** Sessions open at once; past it new ones get 503 (each holds sockets and processes). */
  maxSessions?: number;
  /** A session with no traffic either way for this long is closed (kubelet: 4 h). */
  idleTimeoutMs?: number;
}

/**
 * The streaming HTTP server: /exec/<token>, /attach/<token>, /portforward/<token>.
 * Every session starts as an HTTP/1.1 Upgrade, to SPDY/3.1 or to WebSocket; the
 * sub-protocol is negotiated from the client's list (403 listing ours otherwise).
 */
export class StreamServer {
  readonly #log: Logger;
  readonly #tokens: TokenStore<StreamRequest>;
  readonly #backends: StreamBackends;
  readonly #opts: StreamServerOptions;
  readonly #server: http.Server;
  readonly #wss: WebSocketServer;
  readonly #sockets = new Set<Duplex>();
  readonly #chosen = new WeakMap<http.IncomingMessage, string>();
  #baseUrl = '';

  constructor(log: Logger, tokens: TokenStore<StreamRequest>, backends: StreamBackends, opts: StreamServerOptions) {
    this.#log = log;
    this.#tokens = tokens;
    this.#backends = backends;
    this.#opts = opts;
    this.#server =
      opts.tlsCert && opts.tlsKey
        ? https.createServer({ cert: readFileSync(opts.tlsCert), key: readFileSync(opts.tlsKey) })
        : http.createServer();
    this.#wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: opts.maxWsMessageBytes ?? 4 << 20 });
    // We negotiate sub-protocols ourselves: client-go's tunnelling protocol
    // "SPDY/3.1+portforward.k8s.io" contains '/', which ws rejects as a token, so the
    // header is taken off the request and our choice put on the response.
    this.#wss.on('headers', (headers: string[], req: http.IncomingMessage) => {
      const p = this.#chosen.get(req);
      if (p) headers.push(`Sec-WebSocket-Protocol: ${p}`);
    });
    this.#server.on('request', (req, res) => this.#onPlainRequest(req, res));
    this.#server.on('upgrade', (req, socket, head) => this.#onUpgrade(req, socket, head));
    this.#server.on('clientError', (_err, socket) => socket.destroy());
  }

  async listen(): Promise<void> {
    try {
      await new Promise<void>((resolve, reject) => {
        this.#server.once('error', reject);
        this.#server.listen(this.#opts.port, this.#opts.address, () => {
          this.#server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      throw failedPrecondition(
        `cannot listen for streaming on ${this.#opts.address}:${this.#opts.port} (${(err as Error).message}); set [streaming] address/port to a free one`,
        { cause: err },
      );
    }
    const { port } = this.#server.address() as AddressInfo;
    let host = this.#opts.address;
    // A wildcard address is not something a client can dial: hand out loopback.
    if (host === '0.0.0.0') host = '127.0.0.1';
    else if (host === '::') host = '::1';
    if (host.includes(':')) host = `[${host}]`;
    this.#baseUrl = `${this.#opts.tlsCert && this.#opts.tlsKey ? 'https' : 'http'}://${host}:${port}`;
    this.#log.info({ url: this.#baseUrl }, 'streaming server listening');
  }

  /** The absolute URL for a parked request. */
  url(kind: StreamRequest['kind'], token: string): string {
    return `${this.#baseUrl}/${kind}/${token}`;
  }

  get activeConnections(): number {
    return this.#sockets.size;
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    this.#wss.close();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }

  #route(req: http.IncomingMessage): { kind: StreamRequest['kind']; token: string; query: URLSearchParams } | undefined {
    const u = new URL(req.url ?? '/', 'http://x');
    const m = /^\/(exec|attach|portforward)\/([A-Za-z0-9_-]{1,128})\/?$/.exec(u.pathname);
    if (!m) return undefined;
    return { kind: m[1] as StreamRequest['kind'], token: m[2]!, query: u.searchParams };
  }

  #onPlainRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    // Without an upgrade nothing can stream; the token is left for a proper retry.
    const [code, text] = this.#route(req) ? [400, 'this endpoint needs an Upgrade to SPDY/3.1 or websocket'] : [404, 'not found'];
    res.writeHead(code, { 'content-type': 'text/plain' }).end(`${text}\n`);
  }

  #reject(socket: Duplex, code: number, reason: string, body: string, headers: Record<string, string> = {}): void {
    const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    socket.end(
      `HTTP/1.1 ${code} ${reason}\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body) + 1}\r\n${extra}Connection: close\r\n\r\n${body}\n`,
    );
  }

  #track(socket: Duplex): void {
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
    const idle = this.#opts.idleTimeoutMs ?? 4 * 3600_000;
    if ('setTimeout' in socket && typeof socket.setTimeout === 'function') {
      (socket as import('node:net').Socket).setTimeout(idle, () => socket.destroy());
    }
  }

  #onUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => {});
    if (this.#sockets.size >= (this.#opts.maxSessions ?? 1000)) {
      this.#reject(socket, 503, 'Service Unavailable', 'too many streaming sessions are open; try again later');
      return;
    }
    const route = this.#route(req);
    const parked = route ? this.#tokens.consume(route.token) : undefined;
    if (!route || !parked || parked.kind !== route.kind) {
      this.#reject(socket, 404, 'Not Found', 'unknown, used or expired streaming token');
      return;
    }
    const log = this.#log.child({ stream: route.kind, ...('containerId' in parked ? { container: parked.containerId } : { pod: parked.podSandboxId }) });
    const upgrade = String(req.headers.upgrade ?? '').toLowerCase();
    if (upgrade === 'spdy/3.1') this.#upgradeSpdy(log, req, socket, head, parked);
    else if (upgrade === 'websocket') this.#upgradeWs(log, req, socket, head, parked, route.query);
    else this.#reject(socket, 400, 'Bad Request', `unsupported upgrade ${JSON.stringify(req.headers.upgrade ?? '')}: want SPDY/3.1 or websocket`);
  }

  /** One line in and one out per session, as for a mutating RPC. */
  async #run(log: Logger, protocol: string, parked: Extract<StreamRequest, { kind: 'exec' | 'attach' }>, io: RemoteCommandIO): Promise<SessionResult> {
    const started = process.hrtime.bigint();
    log.info({ protocol, tty: parked.tty, ...(parked.kind === 'exec' ? { cmd: parked.cmd[0] } : {}) }, `${parked.kind} session started`);
    const result = await this.#backends.run(log, parked, io);
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    log.info({ ms: Math.round(ms), clientGone: io.signal.aborted, ...result }, `${parked.kind} session ended`);
    return result;
  }

  #upgradeSpdy(log: Logger, req: http.IncomingMessage, socket: Duplex, head: Buffer, parked: StreamRequest): void {
    const ours: readonly string[] = parked.kind === 'portforward' ? SPDY_PORTFORWARD_PROTOCOLS : SPDY_EXEC_PROTOCOLS;
    const raw = req.headers['x-stream-protocol-version'];
    const offers = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
    // No header at all is the oldest client: it gets the oldest protocol.
    const protocol = offers.length === 0 ? ours[ours.length - 1]! : negotiate(offers, ours);
    if (!protocol) {
      this.#reject(
        socket,
        403,
        'Forbidden',
        `unable to upgrade: unable to negotiate protocol: client supports ${JSON.stringify(offers)}, server accepts ${JSON.stringify(ours)}`,
        { [HEADER_ACCEPTED_VERSIONS]: ours.join(', ') },
      );
      return;
    }
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: ${protocol}\r\n\r\n`,
    );
    this.#track(socket);
    const session = new SpdySession(socket, { server: true });
    session.on('protocolError', (err: Error) => log.debug({ err: err.message }, 'SPDY protocol error; connection closed'));
    log.debug({ protocol }, 'SPDY session started');
    this.#startSpdy(log, session, protocol, parked);
    session.feed(head);
  }

  #startSpdy(log: Logger, session: SpdySession, protocol: string, parked: StreamRequest): void {
    if (parked.kind === 'portforward') {
      serveSpdyPortForward(log, session, (conn) => this.#backends.dial(log, parked, conn));
    } else {
      serveSpdyRemoteCommand(log, session, protocol, parked, (io) => this.#run(log, protocol, parked, io));
    }
  }

  #upgradeWs(log: Logger, req: http.IncomingMessage, socket: Duplex, head: Buffer, parked: StreamRequest, query: URLSearchParams): void {
    const offers = String(req.headers['sec-websocket-protocol'] ?? '').split(',').map((s) => s.trim()).filter(Boolean);
    const ours: string[] =
      parked.kind === 'portforward'
        ? [...SPDY_PORTFORWARD_PROTOCOLS.map((p) => WS_SPDY_TUNNEL_PREFIX + p), ...WS_PORTFORWARD_CHANNEL_PROTOCOLS]
        : [...WS_EXEC_PROTOCOLS];
    const protocol = negotiate(offers, ours);
    if (!protocol) {
      this.#reject(socket, 403, 'Forbidden', `unable to negotiate a websocket subprotocol: client offers ${JSON.stringify(offers)}, server accepts ${JSON.stringify(ours)}`, {
        [HEADER_ACCEPTED_VERSIONS]: ours.join(', '),
      });
      return;
    }
    this.#track(socket);
    delete req.headers['sec-websocket-protocol'];
    this.#chosen.set(req, protocol);
    this.#wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      log.debug({ protocol }, 'websocket session started');
      if (parked.kind !== 'portforward') {
        serveWsRemoteCommand(log, ws, protocol, parked, (io) => this.#run(log, protocol, parked, io));
      } else if (protocol.startsWith(WS_SPDY_TUNNEL_PREFIX)) {
        // SPDY tunnelled through binary messages: the WebSocket becomes the SPDY socket.
        const stream = createWebSocketStream(ws);
        const session = new SpdySession(stream, { server: true });
        this.#startSpdy(log, session, protocol.slice(WS_SPDY_TUNNEL_PREFIX.length), parked);
      } else {
        const fromQuery = query.getAll('port').map(Number).filter((p) => Number.isInteger(p) && p > 0 && p < 65536);
        serveWsPortForward(log, ws, protocol, fromQuery.length > 0 ? fromQuery : parked.ports, (conn) => this.#backends.dial(log, parked, conn));
      }
    });
  }
}
