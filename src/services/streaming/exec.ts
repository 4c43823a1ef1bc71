import { invalidArgument } from '../../core/errors.js';
import type { UnaryHandler } from '../../core/rpc.js';
import type { ContainersArea } from '../containers/api.js';
import type { StreamRequest, StreamServer } from '../../streams/stream-server.js';
import type { TokenStore } from '../../streams/token-store.js';
import { checkStreams, runningContainer } from './validate.js';

/** Exec: checks the request, parks it under a one-time token, returns its URL. */
export function makeExec(containers: ContainersArea, tokens: TokenStore<StreamRequest>, server: StreamServer): UnaryHandler<'Exec'> {
  return async (_ctx, req) => {
    if (req.cmd.length === 0 || req.cmd[0] === '') throw invalidArgument('Exec: cmd must name a command to run');
    checkStreams('Exec', req);
    const t = runningContainer(containers, 'Exec', req.containerId);
    const token = tokens.issue({
      kind: 'exec',
      containerId: t.id,
      cmd: [...req.cmd],
      tty: req.tty,
      stdin: req.stdin,
      stdout: req.stdout,
      stderr: req.stderr,
    });
    return { url: server.url('exec', token) };
  };
}
