import type { UnaryHandler } from '../../core/rpc.js';
import type { ContainersDeps } from './containers-deps.js';
import { removeContainer } from './lifecycle.js';

/** RemoveContainer: kills a running container first; an unknown id is success. */
export function makeRemoveContainer(deps: ContainersDeps): UnaryHandler<'RemoveContainer'> {
  return async (ctx, req) => {
    const c = deps.store.resolve(req.containerId);
    if (!c) return {};
    await deps.mutex.run(c.id, async () => {
      if (deps.store.get(c.id)) await removeContainer(ctx, deps, c);
    });
    return {};
  };
}
