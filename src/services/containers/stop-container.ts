import { invalidArgument } from '../../core/errors.js';
import type { UnaryHandler } from '../../core/rpc.js';
import type { ContainersDeps } from './containers-deps.js';
import { stopContainer } from './lifecycle.js';

/** StopContainer: idempotent; an unknown id is success. timeout 0 kills at once. */
export function makeStopContainer(deps: ContainersDeps): UnaryHandler<'StopContainer'> {
  return async (ctx, req) => {
    if (req.timeout < 0n || req.timeout > 86_400n) throw invalidArgument(`timeout ${req.timeout} s is outside 0..86400`);
    const c = deps.store.resolve(req.containerId);
    if (!c) return {};
    await deps.mutex.run(c.id, () => stopContainer(ctx, deps, c, Number(req.timeout)));
    ctx.log.info({ container: c.id, exitCode: c.status.exitCode }, 'container stopped');
    return {};
  };
}
