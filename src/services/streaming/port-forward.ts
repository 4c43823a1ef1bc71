import type { UnaryHandler } from '../../core/rpc.js';
import type { PodsArea } from '../pods/api.js';
import type { StreamRequest, StreamServer } from '../../streams/stream-server.js';
import type { TokenStore } from '../../streams/token-store.js';
import { checkPorts, readyPod } from './validate.js';

/** PortForward: the ports may also come per connection (SPDY headers, WebSocket query). */
export function makePortForward(pods: PodsArea, tokens: TokenStore<StreamRequest>, server: StreamServer): UnaryHandler<'PortForward'> {
  return async (_ctx, req) => {
    const p = readyPod(pods, req.podSandboxId);
    checkPorts(req.port);
    const token = tokens.issue({ kind: 'portforward', podSandboxId: p.id, ports: [...req.port] });
    return { url: server.url('portforward', token) };
  };
}
