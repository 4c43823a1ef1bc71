import type { Area, BaseDeps } from '../areas.js';
import type { ContainersArea } from '../containers/area.js';
import type { PodsArea } from '../pods/area.js';
import { makeAttach } from './attach.js';
import { runAttach } from './attach-runner.js';
import { makeExec } from './exec.js';
import { runExec } from './exec-runner.js';
import { dialInPod } from './port-dialer.js';
import { makePortForward } from './port-forward.js';
import { StreamServer, type StreamBackends, type StreamRequest } from './stream-server.js';
import { TokenStore } from './token-store.js';
import { readyPod, runningContainer } from './validate.js';

/** Issue 6: the streaming server and Exec/Attach/PortForward. */
export interface StreamingArea extends Area {
  /** The server's base URL once listening (tests, status). */
  readonly server: StreamServer;
}

export async function createStreaming(base: BaseDeps, deps: { containers: ContainersArea; pods: PodsArea }): Promise<StreamingArea> {
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
    close: async () => {
      tokens.clear();
      await server.close();
    },
  };
}
