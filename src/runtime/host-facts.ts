// What the OCI runtime may be asked for on this host (bounding set, cgroup version,
// oom_score_adj clamp, hugepage sizes), read once: the spec (oci/) is built within it.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import type { HostFacts } from '../oci/spec.js';
import { ownBoundingSet, ownOomScoreAdjValue } from '../host/capabilities.js';
import { isCgroupV2 } from '../host/cgroups.js';

function hugepageSizes(): string[] {
  try {
    // hugepages-2048kB → 2MB, as cgroup file names spell them.
    return readdirSync('/sys/kernel/mm/hugepages').map((d) => {
      const kb = Number(/hugepages-(\d+)kB/.exec(d)?.[1] ?? 0);
      return kb >= 1 << 20 ? `${kb >> 20}GB` : kb >= 1024 ? `${kb >> 10}MB` : `${kb}KB`;
    });
  } catch {
    return [];
  }
}

/**
 * What an OCI spec needs to know of this host: the daemon's bounding set, AppArmor,
 * CPUs, the cgroup version, hugepage sizes. `restrictOomScoreAdj` is the config's
 * runtime.restrict_oom_score_adj ("auto": clamp when we lack CAP_SYS_RESOURCE).
 */
export function readHostFacts(restrictOomScoreAdj: boolean | 'auto'): HostFacts {
  const bounding = ownBoundingSet();
  let apparmorEnabled = false;
  try {
    apparmorEnabled = readFileSync('/sys/module/apparmor/parameters/enabled', 'utf8').trim() === 'Y';
  } catch {
    // no AppArmor
  }
  return {
    bounding,
    arch: process.arch,
    apparmorEnabled,
    cpuCount: cpus().length,
    cgroupV2: isCgroupV2(),
    ownOomScoreAdj: ownOomScoreAdjValue(),
    clampOomScoreAdj: restrictOomScoreAdj === true || (restrictOomScoreAdj === 'auto' && !bounding.has('CAP_SYS_RESOURCE')),
    hugepageSizes: existsSync('/sys/kernel/mm/hugepages') ? hugepageSizes() : [],
  };
}
