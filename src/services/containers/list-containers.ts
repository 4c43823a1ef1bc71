import { Container as CriContainer, type ContainerFilter, type DeepPartial } from '../../gen/runtime/v1/api.js';
import { repeatedMessageBytes, withWireBytes } from '../../core/wire-bytes.js';
import type { StreamHandler, UnaryHandler } from '../../core/rpc.js';
import type { Container, ContainerStatusRecord } from './container-store.js';
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

// Each container's list entry, whole and encoded, until its status record is replaced
// (every transition replaces it; meta and config never change): see core/wire-bytes.ts.
const listed = new WeakMap<Container, { status: ContainerStatusRecord; msg: CriContainer; bytes: Uint8Array }>();

function entryOf(c: Container): { msg: CriContainer; bytes: Uint8Array } {
  const hit = listed.get(c);
  if (hit && hit.status === c.status) return hit;
  const msg = CriContainer.fromPartial(toCriContainer(c));
  const entry = { status: c.status, msg, bytes: CriContainer.encode(msg).finish() };
  listed.set(c, entry);
  return entry;
}

export function makeListContainers(deps: ContainersDeps): UnaryHandler<'ListContainers'> {
  return async (_ctx, req) => {
    const entries = filterContainers(deps.store.list(), req.filter).map(entryOf);
    // ListContainersResponse: field 1, the containers.
    return withWireBytes({ containers: entries.map((e) => e.msg) }, repeatedMessageBytes(1, entries.map((e) => e.bytes)));
  };
}

export function makeStreamContainers(deps: ContainersDeps): StreamHandler<'StreamContainers'> {
  return async (_ctx, req, send) => {
    const all: DeepPartial<CriContainer>[] = filterContainers(deps.store.list(), req.filter).map(toCriContainer);
    for (let i = 0; i < all.length; i += 100) await send({ containers: all.slice(i, i + 100) });
    if (all.length === 0) await send({ containers: [] });
  };
}
