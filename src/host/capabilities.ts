import { readFileSync } from 'node:fs';
import { CAPABILITY_NAMES } from '../core/capability-names.js';

/** Decodes a /proc/<pid>/status capability mask (hex) into CAP_* names we know. */
export function decodeCapMask(hex: string): string[] {
  const mask = BigInt(`0x${hex.trim() || '0'}`);
  const out: string[] = [];
  CAPABILITY_NAMES.forEach((name, bit) => {
    if ((mask >> BigInt(bit)) & 1n) out.push(`CAP_${name}`);
  });
  return out;
}

export function capMaskFromStatus(statusText: string, field: 'CapBnd' | 'CapEff' | 'CapPrm'): string | undefined {
  return new RegExp(`^${field}:\\s*([0-9a-f]+)$`, 'm').exec(statusText)?.[1];
}

/**
 * The daemon's own bounding set. runc cannot grant a container what the daemon
 * itself may never hold (e.g. CAP_SYS_RESOURCE on this kind of host): asking for it
 * makes container start fail, so spec generation keeps capabilities inside this set.
 */
export function ownBoundingSet(statusPath = '/proc/self/status'): Set<string> {
  try {
    const mask = capMaskFromStatus(readFileSync(statusPath, 'utf8'), 'CapBnd');
    if (mask) return new Set(decodeCapMask(mask));
  } catch {
    // not Linux or no procfs: assume everything and let the runtime complain
  }
  return new Set(CAPABILITY_NAMES.map((n) => `CAP_${n}`));
}

export function ownOomScoreAdjValue(path = '/proc/self/oom_score_adj'): number {
  try {
    return Number(readFileSync(path, 'utf8').trim()) || 0;
  } catch {
    return 0;
  }
}
