import type { ContainerFilter, DeepPartial, Container as CriContainer } from '../../gen/runtime/v1/api.js';
import type { StreamHandler, UnaryHandler } from '../../core/rpc.js';
import type { Container } from './container-store.js';
import type { ContainersDeps } from './containers-deps.js';
import { criState, toCriContainer } from './to-cri.js';

/** Filters as kubelet and crictl use them: id and pod id by prefix, state, all labels equal. */
export function filterContainers(all: readonly Container[], f: ContainerFilter | undefined): Container[] {
  if (!f) return [...all];
  return all.filter((c) => {
    if (f.id && !c.id.startsWith(f.id)) return false;
    if (f.podSandboxId && !c.meta.podSandboxId.startsWith(f.podSandboxId)) return false;
    if (f.state && criState(c) !== f.state.state) return false;
    for (const [k, v] of Object.entries(f.labelSelector ?? {})) if (c.config.labels[k] !== v) return false;
    return true;
  });
}

export function makeListContainers(deps: ContainersDeps): UnaryHandler<'ListContainers'> {
  return async (_ctx, req) => ({ containers: filterContainers(deps.store.list(), req.filter).map(toCriContainer) });
}

export function makeStreamContainers(deps: ContainersDeps): StreamHandler<'StreamContainers'> {
  return async (_ctx, req, send) => {
    const all: DeepPartial<CriContainer>[] = filterContainers(deps.store.list(), req.filter).map(toCriContainer);
    for (let i = 0; i < all.length; i += 100) await send({ containers: all.slice(i, i + 100) });
    if (all.length === 0) await send({ containers: [] });
  };
}
