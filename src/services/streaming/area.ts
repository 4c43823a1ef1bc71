import type { Deps } from '../deps.js';
import type { StreamingArea } from './api.js';
import type { ContainersArea } from '../containers/api.js';
import type { PodsArea } from '../pods/api.js';
import { makeAttach } from './attach.js';
import { runAttach } from '../../runtime/attach-runner.js';
import { makeExec } from './exec.js';
import { runExec } from '../../runtime/exec-runner.js';
import { dialInPod } from '../../host/port-dialer.js';
import { makePortForward } from './port-forward.js';
import { StreamServer, type StreamBackends, type StreamRequest } from '../../streams/stream-server.js';
import { TokenStore } from '../../streams/token-store.js';
import { readyPod, runningContainer } from './validate.js';

/*
 * Streaming: Exec/Attach/PortForward check the request and park it under a one-time
 * token; the client then connects to the URL and the session runs.
 *
 *   RPC ──► validate.ts ──► TokenStore ──► URL http://<addr>:<port>/<kind>/<token>
 *   client ──HTTP Upgrade──► stream-server.ts
 *       SPDY/3.1 (spdy/: our framer) ──► spdy-remote-command.ts | spdy-port-forward.ts
 *       WebSocket (ws)               ──► ws-remote-command.ts | ws-port-forward.ts
 *                                        (SPDY tunnelled in WebSocket for crictl)
 *   runners: exec-runner.ts   runc exec (TTY: a python pty helper, tty-helper.ts)
 *            attach-runner.ts conmon's attach socket + control fifo
 *            port-dialer.ts   nsenter --net=<pod netns> socat STDIO TCP4:127.0.0.1:<port>
 *
 * Backpressure runs end to end: a process's pipe → a stream whose writes finish only
 * when the socket drains; the client's input → a stream that pauses the socket when
 * its reader is full. A client that goes away aborts its session (kills the exec).
 */


export async function createStreaming(base: Pick<Deps, 'config' | 'log'>, deps: { containers: ContainersArea; pods: PodsArea }): Promise<StreamingArea> {
  const { config } = base;
  const log = base.log.child({ area: 'streaming' });
  const tokens = new TokenStore<StreamRequest>({ ttlMs: config.streaming.token_ttl_seconds * 1000, max: config.streaming.max_tokens });
  const backends: StreamBackends = {
    async run(slog, req, io) {
      // The container may have stopped between the RPC and the connection.
      let target;
      try {
        target = runningContainer(deps.containers, req.kind === 'exec' ? 'Exec' : 'Attach', req.containerId);
      } catch (err) {
        return { error: (err as Error).message };
      }
      return req.kind === 'exec' ? runExec(slog, target, req.cmd, io) : runAttach(slog, target, io);
    },
    async dial(_slog, req, conn) {
      let pod;
      try {
        pod = readyPod(deps.pods, req.podSandboxId);
      } catch (err) {
        conn.fail((err as Error).message);
        return;
      }
      await dialInPod(pod.netnsPath, conn);
    },
  };
  const server = new StreamServer(log, tokens, backends, {
    address: config.streaming.address,
    port: config.streaming.port,
    tlsCert: config.streaming.tls_cert,
    tlsKey: config.streaming.tls_key,
  });
  await server.listen();
  return {
    server,
    handlers: {
      Exec: makeExec(deps.containers, tokens, server),
      Attach: makeAttach(deps.containers, tokens, server),
      PortForward: makePortForward(deps.pods, tokens, server),
    },
    recover: async () => {},
    // A child logger keeps the level it was made with: follow the reloaded one.
    reload: async (ctx) => {
      log.level = ctx.log.level;
    },
    close: async () => {
      tokens.clear();
      await server.close();
    },
  };
}
