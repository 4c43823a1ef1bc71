import { failedPrecondition } from '../../core/errors.js';
import type { UnaryHandler } from '../../core/rpc.js';
import type { ContainersArea } from '../containers/api.js';
import type { StreamRequest, StreamServer } from '../../streams/stream-server.js';
import type { TokenStore } from '../../streams/token-store.js';
import { checkStreams, runningContainer } from './validate.js';

/** Attach: like Exec, but joins the container's own stdio through conmon. */
export function makeAttach(containers: ContainersArea, tokens: TokenStore<StreamRequest>, server: StreamServer): UnaryHandler<'Attach'> {
  return async (_ctx, req) => {
    checkStreams('Attach', req);
    const t = runningContainer(containers, 'Attach', req.containerId);
    if (req.stdin && !t.stdin) {
      throw failedPrecondition(`Attach: container ${t.id} was created without stdin; attach with stdin=false`);
    }
    const token = tokens.issue({ kind: 'attach', containerId: t.id, tty: req.tty, stdin: req.stdin, stdout: req.stdout, stderr: req.stderr });
    return { url: server.url('attach', token) };
  };
}
