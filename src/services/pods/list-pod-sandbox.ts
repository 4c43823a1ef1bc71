import type { PodSandboxFilter } from '../../gen/runtime/v1/api.js';
import type { StreamHandler, UnaryHandler } from '../../core/rpc.js';
import { stateOf } from './pod-sandbox-status.js';
import type { PodsDeps } from './pods-deps.js';
import type { Sandbox } from './sandbox-store.js';

/** Filters as kubelet and crictl use them: id (full or prefix), state, and every label in the selector. */
export function filterSandboxes(all: readonly Sandbox[], f: { id?: string; state?: { state: number }; labelSelector?: Record<string, string> } | undefined): Sandbox[] {
  return all
    .filter((sb) => !f?.id || sb.id.startsWith(f.id))
    .filter((sb) => !f?.state || stateOf(sb) === f.state.state)
    .filter((sb) => Object.entries(f?.labelSelector ?? {}).every(([k, v]) => sb.config.labels[k] === v))
    .sort((a, b) => (a.createdAtNs < b.createdAtNs ? -1 : a.createdAtNs > b.createdAtNs ? 1 : 0));
}

function item(sb: Sandbox) {
  return {
    id: sb.id,
    metadata: sb.config.metadata,
    state: stateOf(sb),
    createdAt: sb.createdAtNs,
    labels: sb.config.labels,
    annotations: sb.config.annotations,
    runtimeHandler: sb.reportedHandler,
  };
}

export function makeListPodSandbox(deps: PodsDeps): UnaryHandler<'ListPodSandbox'> {
  return async (_ctx, req) => ({ items: filterSandboxes(deps.store.list(), req.filter as PodSandboxFilter | undefined).map(item) });
}

// Pages keep each message well under the gRPC size limit on a busy node.
const PAGE = 500;

export function makeStreamPodSandboxes(deps: PodsDeps): StreamHandler<'StreamPodSandboxes'> {
  return async (_ctx, req, send) => {
    const all = filterSandboxes(deps.store.list(), req.filter).map(item);
    for (let i = 0; i < all.length; i += PAGE) await send({ podSandboxes: all.slice(i, i + PAGE) });
    if (all.length === 0) await send({ podSandboxes: [] });
  };
}
