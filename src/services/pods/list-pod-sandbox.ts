import { PodSandbox, type PodSandboxFilter } from '../../gen/runtime/v1/api.js';
import { repeatedMessageBytes, withWireBytes } from '../../core/wire-bytes.js';
import type { StreamHandler, UnaryHandler } from '../../core/rpc.js';
import { stateOf } from './pod-sandbox-status.js';
import type { PodsDeps } from './pods-deps.js';
import type { Sandbox, SandboxStatus } from './sandbox-store.js';

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

// Each pod's list entry, whole and encoded, until its status record is replaced (every
// transition replaces it; meta and config never change): see core/wire-bytes.ts.
const listed = new WeakMap<Sandbox, { status: SandboxStatus; msg: PodSandbox; bytes: Uint8Array }>();

function entryOf(sb: Sandbox): { msg: PodSandbox; bytes: Uint8Array } {
  const hit = listed.get(sb);
  if (hit && hit.status === sb.status) return hit;
  const msg = PodSandbox.fromPartial(item(sb));
  const entry = { status: sb.status, msg, bytes: PodSandbox.encode(msg).finish() };
  listed.set(sb, entry);
  return entry;
}

export function makeListPodSandbox(deps: PodsDeps): UnaryHandler<'ListPodSandbox'> {
  return async (_ctx, req) => {
    const entries = filterSandboxes(deps.store.list(), req.filter as PodSandboxFilter | undefined).map(entryOf);
    // ListPodSandboxResponse: field 1, the items.
    return withWireBytes({ items: entries.map((e) => e.msg) }, repeatedMessageBytes(1, entries.map((e) => e.bytes)));
  };
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
