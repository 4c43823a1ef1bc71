import { CricketError } from '../core/errors.js';

// Names in a layer tarball are untrusted. Everything written lands under the layer's
// own directory: a name is split into plain components, and `..` or an absolute path
// is refused outright rather than "cleaned" (a layer that needs either is hostile or
// broken, and the pull should say so).

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_MARKER = '.wh..wh..opq';

export class HostileLayerError extends CricketError {
  constructor(message: string) {
    super('InvalidArgument', `refusing layer entry: ${message}`);
    this.name = 'HostileLayerError';
  }
}

/** Plain components of a tar entry name; [] for the layer root ("./"). */
export function entryComponents(name: string): string[] {
  if (name.startsWith('/')) throw new HostileLayerError(`"${name}" is an absolute path`);
  if (name.includes('\0')) throw new HostileLayerError(`"${name.replace(/\0/g, '\\0')}" contains a NUL byte`);
  const parts: string[] = [];
  for (const p of name.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') throw new HostileLayerError(`"${name}" contains ".."`);
    parts.push(p);
  }
  return parts;
}

export type WhiteoutKind = { kind: 'none' } | { kind: 'opaque' } | { kind: 'whiteout'; target: string } | { kind: 'meta' };

/** What an entry's last component means to overlay. */
export function classifyWhiteout(base: string): WhiteoutKind {
  if (base === OPAQUE_MARKER) return { kind: 'opaque' };
  // Other ".wh..wh." names are aufs bookkeeping (hardlink dirs): nothing to apply.
  if (base.startsWith(`${WHITEOUT_PREFIX}${WHITEOUT_PREFIX}`)) return { kind: 'meta' };
  if (base.startsWith(WHITEOUT_PREFIX)) {
    const target = base.slice(WHITEOUT_PREFIX.length);
    if (target === '' || target === '.' || target === '..') throw new HostileLayerError(`whiteout "${base}" names no file`);
    return { kind: 'whiteout', target };
  }
  return { kind: 'none' };
}

/** Xattrs a layer may not set: overlay's own markers would change what the merged view shows. */
export function allowedXattr(name: string): boolean {
  return !name.startsWith('trusted.overlay.') && name.length > 0 && name.length <= 255;
}
