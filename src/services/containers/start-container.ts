import { notFound } from '../../core/errors.js';
import type { UnaryHandler } from '../../core/rpc.js';
import type { ContainersDeps } from './containers-deps.js';
import { startContainer } from './lifecycle.js';

export function makeStartContainer(deps: ContainersDeps): UnaryHandler<'StartContainer'> {
  return async (ctx, req) => {
    const c = deps.store.resolve(req.containerId);
    if (!c) throw notFound(`container "${req.containerId}" not found`);
    await deps.mutex.run(c.id, () => startContainer(ctx, deps, c));
    ctx.log.info({ container: c.id }, 'container started');
    return {};
  };
}
