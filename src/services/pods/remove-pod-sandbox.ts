import type { UnaryHandler } from '../../core/rpc.js';
import type { PodsDeps } from './pods-deps.js';
import { removeSandbox } from './teardown.js';

/** RemovePodSandbox: force-removes the pod's containers, stops it if needed, removes everything; unknown id is success. */
export function makeRemovePodSandbox(deps: PodsDeps): UnaryHandler<'RemovePodSandbox'> {
  return async (ctx, req) => {
    const found = deps.store.resolve(req.podSandboxId);
    if (!found) return {};
    await deps.mutex.run(found.id, async () => {
      const sb = deps.store.resolve(found.id);
      if (sb) await removeSandbox(ctx, deps, sb);
    });
    ctx.log.debug({ pod: found.id }, 'pod sandbox removed');
    return {};
  };
}
