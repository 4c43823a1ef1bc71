import { invalidArgument } from '../core/errors.js';
import { CAPABILITY_NAMES } from '../core/capability-names.js';
import type { OciCapabilities } from './types.js';

/** The set a container gets by default (the same fourteen Docker and containerd grant). */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

const ALL = CAPABILITY_NAMES.map((n) => `CAP_${n}`);

/** "net_admin", "NET_ADMIN" and "CAP_NET_ADMIN" all name CAP_NET_ADMIN; "ALL" stays ALL. */
export function normalizeCap(name: string): string {
  const up = name.trim().toUpperCase();
  if (up === 'ALL') return 'ALL';
  const full = up.startsWith('CAP_') ? up : `CAP_${up}`;
  if (!ALL.includes(full)) throw invalidArgument(`unknown capability "${name}"; use a Linux capability name such as NET_ADMIN, or ALL`);
  return full;
}

/**
 * The container's capabilities: privileged gets everything; otherwise the default set,
 * with ALL in add granting everything and ALL in drop starting from nothing before the
 * named adds. Whatever results is cut to the daemon's bounding set, since runc cannot
 * hand out a capability the daemon does not hold.
 */
export function computeCapabilities(input: {
  privileged: boolean;
  add: readonly string[];
  drop: readonly string[];
  ambient: readonly string[];
  bounding: ReadonlySet<string>;
}): OciCapabilities {
  const add = input.add.map(normalizeCap);
  const drop = input.drop.map(normalizeCap);
  let caps: Set<string>;
  if (input.privileged || add.includes('ALL')) caps = new Set(ALL);
  else if (drop.includes('ALL')) caps = new Set();
  else caps = new Set(DEFAULT_CAPABILITIES);
  if (!input.privileged) {
    for (const c of add) if (c !== 'ALL') caps.add(c);
    for (const c of drop) if (c !== 'ALL') caps.delete(c);
  }
  const list = ALL.filter((c) => caps.has(c) && input.bounding.has(c));
  const ambient = input.ambient.map(normalizeCap).filter((c) => c !== 'ALL' && list.includes(c));
  return { bounding: list, effective: list, permitted: list, inheritable: ambient, ambient };
}
