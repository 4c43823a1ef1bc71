import { Command } from 'commander';
import net from 'node:net';
import type { SpdySession } from '../../streams/spdy/session.js';
import type { CliIo } from '../cli-io.js';
import { UsageError } from '../exit-codes.js';
import { resolvePod } from '../resolve.js';

function parseSpec(spec: string): { local: number; remote: number } {
  const m = /^(\d*):?(\d+)$/.exec(spec);
  const ok = (n: number) => Number.isInteger(n) && n >= 0 && n <= 65535;
  if (!m) throw new UsageError(`a port is LOCAL:REMOTE or PORT, not "${spec}"`);
  const remote = Number(m[2]);
  const local = spec.includes(':') ? (m[1] === '' ? 0 : Number(m[1])) : remote;
  if (!ok(local) || !ok(remote) || remote === 0) throw new UsageError(`bad port in "${spec}"`);
  return { local, remote };
}

export function portForwardCommand(io: CliIo): Command {
  return new Command('port-forward')
    .description("forward local ports to ports in a pod's network (until Ctrl-C)")
    .argument('<pod>', 'name or id (prefix too)')
    .argument('<ports...>', 'LOCAL:REMOTE, PORT (same on both sides) or :REMOTE (a free local port)')
    .option('--address <addr>', 'the local address to listen on', '127.0.0.1')
    .action(async (ref: string, specs: string[], opts: { address: string }, cmd: Command) => {
      const pairs = specs.map(parseSpec);
      const { forwardConnection, openPortForward } = await import('../remote/spdy-port-forward.js');
      const s = io.session(cmd);
      const pod = await resolvePod(s, ref);
      const { url } = await s.call('PortForward', { podSandboxId: pod.id, port: pairs.map((p) => p.remote) });
      let session: SpdySession = await openPortForward(url);
      // A session that ends (the daemon restarted, a network blip) is asked for again on the next connection.
      const current = async () => {
        if (!session.closed) return session;
        const again = await s.call('PortForward', { podSandboxId: pod.id, port: pairs.map((p) => p.remote) });
        session = await openPortForward(again.url);
        return session;
      };
      let requestId = 0;
      const servers = await Promise.all(
        pairs.map(
          (p) =>
            new Promise<net.Server>((resolve, reject) => {
              const srv = net.createServer((sock) => {
                current().then(
                  (ss) => forwardConnection(ss, sock, p.remote, requestId++, (m) => io.err(`cricket: port ${p.remote}: ${m}\n`)),
                  (err: unknown) => {
                    io.err(`cricket: ${(err as Error).message}\n`);
                    sock.destroy();
                  },
                );
              });
              srv.once('error', reject);
              srv.listen(p.local, opts.address, () => {
                const addr = srv.address() as net.AddressInfo;
                io.out(`Forwarding from ${opts.address}:${addr.port} -> ${p.remote}\n`);
                resolve(srv);
              });
            }),
        ),
      );
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      for (const srv of servers) srv.close();
      session.destroy();
    });
}
