import { invalidArgument } from '../core/errors.js';

/**
 * An image reference split the way kubelet, crictl and containerd understand it:
 * `busybox` → docker.io/library/busybox:latest; `host:5000/a/b@sha256:…`;
 * `name:tag@sha256:…` keeps both (the digest decides what is pulled).
 */
export interface ImageReference {
  /** Registry host (with port), e.g. docker.io, 127.0.0.1:5000. */
  readonly domain: string;
  /** Repository path inside the registry, e.g. library/busybox. */
  readonly path: string;
  readonly tag: string | undefined;
  readonly digest: string | undefined;
  /** True when the input named no registry (a short name). */
  readonly shortName: boolean;
}

export const DEFAULT_DOMAIN = 'docker.io';
const LEGACY_DOMAINS = new Set(['index.docker.io', 'registry-1.docker.io']);

// The grammar of github.com/distribution/reference, written out again.
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}$/;
const DOMAIN = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?$|^\[[0-9a-fA-F:.]+\](?::[0-9]+)?$/;

/** The repository's full name: domain/path. */
export function repoName(r: ImageReference): string {
  return `${r.domain}/${r.path}`;
}

/** The canonical string: domain/path[:tag][@digest]. */
export function formatReference(r: ImageReference): string {
  return `${repoName(r)}${r.tag !== undefined ? `:${r.tag}` : ''}${r.digest !== undefined ? `@${r.digest}` : ''}`;
}

/**
 * Parses and normalises a reference. A name without tag or digest gets `latest`.
 * Throws InvalidArgument saying what is wrong.
 */
export function parseReference(input: string, defaultTag = true): ImageReference {
  const bad = (why: string) => invalidArgument(`invalid image reference "${input}": ${why}`);
  if (input.length === 0) throw bad('it is empty');
  if (input.length > 4096) throw bad('it is longer than 4096 characters');
  if (/\s/.test(input)) throw bad('it contains whitespace');
  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw bad(`"${digest}" is not a digest (algorithm:hex)`);
    if (digest.startsWith('sha256:') && !/^sha256:[0-9a-f]{64}$/.test(digest)) {
      throw bad('a sha256 digest is 64 lowercase hex characters');
    }
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw bad(`tag "${tag}" must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`);
  }
  if (rest.length === 0) throw bad('the repository name is empty');
  let domain = DEFAULT_DOMAIN;
  let path = rest;
  let shortName = true;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase()) {
      domain = first;
      path = rest.slice(slash + 1);
      shortName = false;
      if (!DOMAIN.test(domain)) throw bad(`"${domain}" is not a valid registry host`);
    }
  }
  if (LEGACY_DOMAINS.has(domain)) domain = DEFAULT_DOMAIN;
  if (/^[0-9a-f]{64}$/.test(path) && shortName) {
    throw bad('a 64-hex-character name is an image id, not a repository');
  }
  for (const c of path.split('/')) {
    if (!COMPONENT.test(c)) {
      throw bad(`path component "${c}" must be lowercase letters and digits, separated by ".", "_", "__" or "-"`);
    }
  }
  if (domain === DEFAULT_DOMAIN && !path.includes('/')) path = `library/${path}`;
  if (domain.length + 1 + path.length > 255) throw bad('the repository name is longer than 255 characters');
  if (tag === undefined && digest === undefined && defaultTag) tag = 'latest';
  return { domain, path, tag, digest, shortName };
}

/** The same reference in another registry (a search-registry candidate or a mirror). */
export function withDomain(r: ImageReference, domain: string): ImageReference {
  let path = r.path;
  if (r.domain === DEFAULT_DOMAIN && domain !== DEFAULT_DOMAIN && path.startsWith('library/') && r.shortName) {
    path = path.slice('library/'.length);
  }
  if (domain === DEFAULT_DOMAIN && !path.includes('/')) path = `library/${path}`;
  return { ...r, domain, path, shortName: false };
}
