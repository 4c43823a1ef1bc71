import { CricketError } from '../core/errors.js';
import { isDigest } from '../core/ids.js';

export const MT = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
}

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
}

export type ParsedManifest =
  | { kind: 'index'; manifests: Descriptor[] }
  | { kind: 'image'; config: Descriptor; layers: Descriptor[] };

const bad = (why: string) => new CricketError('InvalidArgument', `unusable manifest: ${why}`);

function descriptor(v: unknown, what: string): Descriptor {
  if (!v || typeof v !== 'object') throw bad(`${what} is not an object`);
  const d = v as Record<string, unknown>;
  if (typeof d['digest'] !== 'string' || !isDigest(d['digest'])) throw bad(`${what} has no sha256 digest`);
  if (typeof d['size'] !== 'number' || d['size'] < 0 || !Number.isSafeInteger(d['size'])) throw bad(`${what} has no valid size`);
  const out: Descriptor = { mediaType: typeof d['mediaType'] === 'string' ? d['mediaType'] : '', digest: d['digest'], size: d['size'] };
  const p = d['platform'] as Record<string, unknown> | undefined;
  if (p && typeof p === 'object' && typeof p['architecture'] === 'string' && typeof p['os'] === 'string') {
    out.platform = { architecture: p['architecture'], os: p['os'], ...(typeof p['variant'] === 'string' ? { variant: p['variant'] } : {}) };
  }
  return out;
}

/** Parses an index/list or an image manifest; schema1 is refused with the reason. */
export function parseManifest(mediaType: string, bytes: Buffer): ParsedManifest {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
  } catch {
    throw bad('not JSON');
  }
  const mt = (typeof doc['mediaType'] === 'string' && doc['mediaType']) || mediaType;
  if (mt === MT.dockerSchema1 || mt === MT.dockerSchema1Signed || doc['schemaVersion'] === 1) {
    throw new CricketError(
      'InvalidArgument',
      'the image uses Docker manifest schema 1, which is deprecated and not supported; push it again with a current client (schema 2 or OCI)',
    );
  }
  if (mt === MT.ociIndex || mt === MT.dockerList || (Array.isArray(doc['manifests']) && !doc['config'])) {
    if (!Array.isArray(doc['manifests'])) throw bad('an index without "manifests"');
    return { kind: 'index', manifests: doc['manifests'].map((m, i) => descriptor(m, `manifests[${i}]`)) };
  }
  if (mt === MT.ociManifest || mt === MT.dockerManifest || doc['config']) {
    if (!Array.isArray(doc['layers'])) throw bad('an image manifest without "layers"');
    return {
      kind: 'image',
      config: descriptor(doc['config'], 'config'),
      layers: doc['layers'].map((l, i) => descriptor(l, `layers[${i}]`)),
    };
  }
  throw bad(`unknown media type "${mt}"`);
}

/** The host platform in OCI terms. */
export function hostPlatform(): Platform {
  switch (process.arch) {
    case 'x64':
      return { os: 'linux', architecture: 'amd64' };
    case 'arm64':
      return { os: 'linux', architecture: 'arm64', variant: 'v8' };
    case 'arm':
      return { os: 'linux', architecture: 'arm', variant: 'v7' };
    case 'ia32':
      return { os: 'linux', architecture: '386' };
    default:
      return { os: 'linux', architecture: process.arch };
  }
}

// Variants a platform can run, best first (containerd's rules: arm64 runs v8 or
// unmarked; armv7 also runs v6 and v5).
function acceptableVariants(p: Platform): (string | undefined)[] {
  if (p.architecture === 'arm64') return ['v8', undefined];
  if (p.architecture === 'arm') {
    const order = ['v8', 'v7', 'v6', 'v5'];
    const i = Math.max(0, order.indexOf(p.variant ?? 'v7'));
    return [...order.slice(i), undefined];
  }
  return [p.variant, undefined];
}

/** Picks the manifest for `want` from an index: exact variant first, then compatible ones. */
export function choosePlatform(manifests: readonly Descriptor[], want: Platform): Descriptor | undefined {
  const candidates = manifests.filter(
    (m) => m.platform && m.platform.os === want.os && m.platform.architecture === want.architecture,
  );
  for (const v of acceptableVariants(want)) {
    const hit = candidates.find((m) => (m.platform!.variant ?? undefined) === v);
    if (hit) return hit;
  }
  return candidates[0];
}

export function platformString(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

/** What the image config carries that we use. */
export interface ImageConfigDoc {
  architecture?: string;
  os?: string;
  config?: Record<string, unknown>;
  rootfs?: { type?: string; diff_ids?: string[] };
}

export function parseImageConfig(bytes: Buffer, layerCount: number): ImageConfigDoc & { diffIds: string[] } {
  let doc: ImageConfigDoc;
  try {
    doc = JSON.parse(bytes.toString('utf8')) as ImageConfigDoc;
  } catch {
    throw new CricketError('InvalidArgument', 'the image config is not JSON');
  }
  const diffIds = doc.rootfs?.diff_ids;
  if (!Array.isArray(diffIds) || diffIds.some((d) => typeof d !== 'string' || !isDigest(d))) {
    throw new CricketError('InvalidArgument', 'the image config has no valid rootfs.diff_ids');
  }
  if (diffIds.length !== layerCount) {
    throw new CricketError('InvalidArgument', `the image config lists ${diffIds.length} layers but the manifest has ${layerCount}`);
  }
  return { ...doc, diffIds };
}
