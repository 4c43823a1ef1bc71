import type { Container, Image, PodSandbox } from '../gen/runtime/v1/api.js';
import { UsageError } from './exit-codes.js';
import type { Session } from './session.js';

// Wherever an id goes, a person may write the full id, a name, or an unambiguous id
// prefix: an exact id wins, then an exact name, then a prefix matching one thing.

interface Named {
  id: string;
  createdAt: bigint;
  names: string[];
  /** Items that share a name but are one thing to a person (attempts of one container). */
  group: string;
}

function pick<T extends Named>(kind: string, ref: string, items: readonly T[]): T {
  if (ref === '') throw new UsageError(`a ${kind} name or id is needed`);
  const exact = items.find((i) => i.id === ref);
  if (exact) return exact;
  const byName = items.filter((i) => i.names.includes(ref));
  if (byName.length > 0) {
    // Several attempts of one container (or pods of one name and namespace): the newest.
    if (new Set(byName.map((i) => i.group)).size === 1) return byName.reduce((a, b) => (b.createdAt > a.createdAt ? b : a));
    throw new UsageError(`"${ref}" names ${byName.length} ${kind}s: ${byName.map((i) => i.id.slice(0, 13)).join(', ')}; give an id`);
  }
  const byPrefix = /^[0-9a-f]+$/.test(ref) ? items.filter((i) => i.id.startsWith(ref)) : [];
  if (byPrefix.length === 1) return byPrefix[0]!;
  if (byPrefix.length > 1) throw new UsageError(`id prefix "${ref}" matches ${byPrefix.length} ${kind}s; give more of the id`);
  throw new UsageError(`no ${kind} named or with id "${ref}"`);
}

export async function resolvePod(s: Session, ref: string): Promise<PodSandbox> {
  const { items } = await s.call('ListPodSandbox', {});
  return resolvePodIn(items, ref);
}

export function resolvePodIn(items: readonly PodSandbox[], ref: string): PodSandbox {
  const named = items.map((p) => ({
    item: p,
    id: p.id,
    createdAt: p.createdAt,
    names: [p.metadata?.name ?? '', `${p.metadata?.namespace ?? ''}/${p.metadata?.name ?? ''}`],
    group: `${p.metadata?.namespace}/${p.metadata?.name}`,
  }));
  return pick('pod', ref, named).item;
}

export async function resolveContainer(s: Session, ref: string): Promise<Container> {
  const { containers } = await s.call('ListContainers', {});
  const named = containers.map((c) => ({
    item: c,
    id: c.id,
    createdAt: c.createdAt,
    names: [c.metadata?.name ?? ''],
    group: `${c.podSandboxId}/${c.metadata?.name}`,
  }));
  return pick('container', ref, named).item;
}

/** Images resolve in cricketd (id, id prefix, tag, digest, short name), as ImageStatus does. */
export async function resolveImage(s: Session, ref: string): Promise<Image> {
  if (ref === '') throw new UsageError('an image reference or id is needed');
  const r = await s.call('ImageStatus', { image: { image: ref } });
  if (r.image) return r.image;
  // ImageStatus takes full id prefixes only with sha256:; a bare hex prefix is matched here.
  if (/^[0-9a-f]{3,64}$/.test(ref)) {
    const { images } = await s.call('ListImages', {});
    const m = images.filter((i) => i.id.replace(/^sha256:/, '').startsWith(ref));
    if (m.length === 1) return m[0]!;
    if (m.length > 1) throw new UsageError(`id prefix "${ref}" matches ${m.length} images; give more of the id`);
  }
  throw new UsageError(`no image "${ref}" here (cricket images lists them; cricket pull fetches one)`);
}
