import { invalidArgument } from '../core/errors.js';
import type { LinuxContainerResources } from '../gen/runtime/v1/api.js';
import type { OciResources } from './types.js';

export const MIN_MEMORY_BYTES = 4n << 20n;
const MAX_MEMORY_BYTES = 1n << 52n;
const MAX_CPU_SHARES = 262_144n;

export interface ResourceFacts {
  cpuCount: number;
  cgroupV2: boolean;
  /** The daemon's own oom_score_adj, and whether lowering below it must be avoided. */
  ownOomScoreAdj: number;
  clampOomScoreAdj: boolean;
  /** Huge page sizes the host offers, as cgroup names them (2MB, 1GB). */
  hugepageSizes: readonly string[];
}

export function parseCpuList(list: string, cpuCount: number, what: string): void {
  if (list === '') return;
  for (const part of list.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw invalidArgument(`${what} "${list}" is not a CPU list such as 0-1,3`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a) throw invalidArgument(`${what} "${list}" has a range that runs backwards`);
    if (cpuCount > 0 && b >= cpuCount && what === 'cpuset_cpus') {
      throw invalidArgument(`${what} "${list}" names CPU ${b} but this node has ${cpuCount} CPUs (0-${cpuCount - 1})`);
    }
  }
}

/**
 * CRI resources → OCI linux.resources plus the process oom_score_adj. Refuses what
 * cannot be meant (negative sizes, shares beyond the kernel's range) with a sentence
 * naming the field; zero means "not set", as kubelet sends it.
 */
export function convertResources(r: LinuxContainerResources | undefined, facts: ResourceFacts): { resources: OciResources; oomScoreAdj: number | undefined } {
  const out: OciResources = {};
  if (!r) return { resources: out, oomScoreAdj: undefined };
  const cpu: NonNullable<OciResources['cpu']> = {};
  if (r.cpuShares < 0n || r.cpuShares > MAX_CPU_SHARES) throw invalidArgument(`cpu_shares ${r.cpuShares} is outside 0..${MAX_CPU_SHARES}`);
  if (r.cpuShares > 0n) cpu.shares = Math.max(2, Number(r.cpuShares));
  if (r.cpuPeriod < 0n || (r.cpuPeriod > 0n && (r.cpuPeriod < 1000n || r.cpuPeriod > 1_000_000n))) {
    throw invalidArgument(`cpu_period ${r.cpuPeriod} µs is outside 1000..1000000 µs`);
  }
  if (r.cpuPeriod > 0n) cpu.period = Number(r.cpuPeriod);
  if (r.cpuQuota < -1n || (r.cpuQuota > 0n && r.cpuQuota < 1000n) || r.cpuQuota > 1n << 40n) {
    throw invalidArgument(`cpu_quota ${r.cpuQuota} µs must be -1 (unlimited), 0 (unset) or at least 1000 µs`);
  }
  if (r.cpuQuota !== 0n) cpu.quota = Number(r.cpuQuota);
  parseCpuList(r.cpusetCpus, facts.cpuCount, 'cpuset_cpus');
  parseCpuList(r.cpusetMems, 0, 'cpuset_mems');
  if (r.cpusetCpus) cpu.cpus = r.cpusetCpus;
  if (r.cpusetMems) cpu.mems = r.cpusetMems;
  if (Object.keys(cpu).length > 0) out.cpu = cpu;

  if (r.memoryLimitInBytes < 0n || r.memoryLimitInBytes > MAX_MEMORY_BYTES) {
    throw invalidArgument(`memory_limit_in_bytes ${r.memoryLimitInBytes} is negative or beyond any machine`);
  }
  if (r.memoryLimitInBytes > 0n && r.memoryLimitInBytes < MIN_MEMORY_BYTES) {
    throw invalidArgument(`memory_limit_in_bytes ${r.memoryLimitInBytes} is below the minimum of ${MIN_MEMORY_BYTES} bytes (4 MiB)`);
  }
  if (r.memorySwapLimitInBytes < -1n || r.memorySwapLimitInBytes > MAX_MEMORY_BYTES) {
    throw invalidArgument(`memory_swap_limit_in_bytes ${r.memorySwapLimitInBytes} is out of range`);
  }
  if (r.memoryLimitInBytes > 0n) {
    out.memory = { limit: Number(r.memoryLimitInBytes) };
    if (r.memorySwapLimitInBytes !== 0n) {
      if (r.memorySwapLimitInBytes > 0n && r.memorySwapLimitInBytes < r.memoryLimitInBytes) {
        throw invalidArgument('memory_swap_limit_in_bytes counts memory plus swap and must not be below memory_limit_in_bytes');
      }
      out.memory.swap = Number(r.memorySwapLimitInBytes);
    }
  } else if (r.memorySwapLimitInBytes > 0n) {
    throw invalidArgument('memory_swap_limit_in_bytes needs memory_limit_in_bytes');
  }

  if (r.hugepageLimits.length > 0) {
    out.hugepageLimits = r.hugepageLimits.map((h) => {
      if (!facts.hugepageSizes.includes(h.pageSize)) {
        throw invalidArgument(`hugepage size "${h.pageSize}" is not offered by this node (it has: ${facts.hugepageSizes.join(', ') || 'none'})`);
      }
      if (h.limit > BigInt(Number.MAX_SAFE_INTEGER)) throw invalidArgument(`hugepage limit ${h.limit} is out of range`);
      return { pageSize: h.pageSize, limit: Number(h.limit) };
    });
  }
  const unified = Object.entries(r.unified ?? {});
  if (unified.length > 0) {
    if (!facts.cgroupV2) throw invalidArgument('unified (cgroup v2) resources were given but this node runs cgroup v1');
    for (const [k] of unified) {
      if (!/^[a-z]+\.[a-z0-9_.]+$/.test(k)) throw invalidArgument(`unified resource key "${k}" is not a cgroup v2 file name`);
    }
    out.unified = Object.fromEntries(unified);
  }

  let oomScoreAdj: number | undefined;
  if (r.oomScoreAdj < -1000n || r.oomScoreAdj > 1000n) throw invalidArgument(`oom_score_adj ${r.oomScoreAdj} is outside -1000..1000`);
  oomScoreAdj = Number(r.oomScoreAdj);
  // Without CAP_SYS_RESOURCE the kernel refuses a lower value than our own, and
  // runc would fail the whole start over it.
  if (facts.clampOomScoreAdj) oomScoreAdj = Math.max(oomScoreAdj, facts.ownOomScoreAdj);
  return { resources: out, oomScoreAdj };
}
