import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseHostPort } from '../config/host-port.js';
import { failedPrecondition, invalidArgument } from '../core/errors.js';
import type { PrometheusMetrics } from './prometheus-metrics.js';

/**
 * GET /metrics on a TCP host:port, in the Prometheus text format. A scrape reads
 * counters kept in memory and counts the areas hold, so it never waits on an RPC
 * (nor an RPC on it). Anything else answers 404; a method other than GET/HEAD 405.
 */
export class MetricsServer {
  readonly #server: Server;
  readonly #metrics: PrometheusMetrics;

  constructor(metrics: PrometheusMetrics) {
    this.#metrics = metrics;
    this.#server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (path !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: metrics are at /metrics\n');
        return;
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('only GET\n');
        return;
      }
      this.#metrics.render().then(
        ({ body, contentType }) => res.writeHead(200, { 'content-type': contentType }).end(req.method === 'HEAD' ? undefined : body),
        (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${(err as Error).message}\n`),
      );
    });
    // Scrapers keep connections alive; a stopping daemon must not wait for them.
    this.#server.keepAliveTimeout = 5_000;
  }

  /** Binds host:port; a malformed or taken address is one clear error. Returns the bound address. */
  async listen(address: string): Promise<string> {
    const hp = parseHostPort(address);
    if (typeof hp === 'string') throw invalidArgument(`metrics address ${hp}`);
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        reject(failedPrecondition(`cannot serve metrics on ${address}: ${err.code === 'EADDRINUSE' ? 'the address is in use' : err.message}`));
      };
      this.#server.once('error', onError);
      this.#server.listen(hp.port, hp.host, () => {
        this.#server.off('error', onError);
        resolve();
      });
    });
    const a = this.#server.address() as AddressInfo;
    return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
  }

  async close(): Promise<void> {
    if (!this.#server.listening) return;
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
