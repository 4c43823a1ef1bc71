import { randomBytes } from 'node:crypto';
import { invalidArgument, notFound } from './errors.js';

// Branded ids: a SandboxId cannot be passed where a ContainerId is wanted.
declare const brand: unique symbol;
type Brand<T, B extends string> = T & { readonly [brand]: B };

export type SandboxId = Brand<string, 'SandboxId'>;
export type ContainerId = Brand<string, 'ContainerId'>;
export type Digest = Brand<string, 'Digest'>;

const HEX64 = /^[0-9a-f]{64}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;

/** 64 lowercase hex characters: kubelet maps cgroup leaf names back to ids by this shape. */
export function newId<T extends SandboxId | ContainerId>(): T {
  return randomBytes(32).toString('hex') as T;
}

export function isFullId(s: string): boolean {
  return HEX64.test(s);
}

export function asDigest(s: string): Digest {
  if (!DIGEST.test(s)) throw invalidArgument(`"${s}" is not a sha256 digest (sha256:<64 hex>)`);
  return s as Digest;
}

export function isDigest(s: string): s is Digest {
  return DIGEST.test(s);
}

/**
 * Resolves a full id or an unambiguous prefix among known ids, as crictl users expect.
 * Returns undefined when nothing matches so callers choose NotFound or idempotent success.
 */
export function resolvePrefix<T extends string>(input: string, known: Iterable<T>, kind: string): T | undefined {
  if (input.length === 0) throw invalidArgument(`${kind} id must not be empty`);
  if (!/^[0-9a-f]+$/.test(input)) {
    if (input.length > 128) throw invalidArgument(`${kind} id is ${input.length} characters; ids are 64 hex characters`);
    return undefined;
  }
  const matches: T[] = [];
  for (const id of known) {
    if (id === input) return id;
    if (id.startsWith(input)) matches.push(id);
  }
  if (matches.length > 1) {
    throw invalidArgument(`${kind} id prefix "${input}" is ambiguous: it matches ${matches.length} ${kind}s`);
  }
  return matches[0];
}

export function mustResolve<T extends string>(input: string, known: Iterable<T>, kind: string): T {
  const id = resolvePrefix(input, known, kind);
  if (id === undefined) throw notFound(`${kind} "${input}" not found`);
  return id;
}
