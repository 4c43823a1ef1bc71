import type { UnaryHandler } from '../../core/rpc.js';
import type { PodsDeps } from './pods-deps.js';
import { stopSandbox } from './teardown.js';

/** StopPodSandbox: idempotent; an unknown id is success (kubelet retries freely). */
export function makeStopPodSandbox(deps: PodsDeps): UnaryHandler<'StopPodSandbox'> {
  return async (ctx, req) => {
    const found = deps.store.resolve(req.podSandboxId);
    if (!found) return {};
    await deps.mutex.run(found.id, async () => {
      // Re-read under the lock: a concurrent Remove may have finished meanwhile.
      const sb = deps.store.resolve(found.id);
      if (sb) await stopSandbox(ctx, deps, sb);
    });
    ctx.log.debug({ pod: found.id }, 'pod sandbox stopped');
    return {};
  };
}
