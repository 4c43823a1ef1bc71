import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { CGROUP_ROOT, cgroupFsPath, isCgroupV2, num, parseKeyed, readOpt } from './cgroups.js';

/**
 * What a container's cgroup tells for the cAdvisor-named CRI metrics
 * (ListPodSandboxMetrics), beyond the CRI stats: CPU by mode and throttling, memory
 * by kind, failure and OOM counts, the limits set, tasks and open fds. A field the
 * host does not offer (a missing controller or file) is undefined and its metric left out.
 */
export interface CgroupMetrics {
  cpuUserNs?: bigint;
  cpuSystemNs?: bigint;
  cfsPeriods?: bigint;
  cfsThrottledPeriods?: bigint;
  cfsThrottledNs?: bigint;
  memoryCacheBytes?: bigint;
  memoryMappedFileBytes?: bigint;
  memorySwapBytes?: bigint;
  memoryMaxUsageBytes?: bigint;
  /** Times usage hit the limit (v1 memory.failcnt, v2 memory.events max). */
  memoryFailcnt?: bigint;
  oomKills?: bigint;
  specCpuShares?: bigint;
  specCpuQuota?: bigint;
  specCpuPeriod?: bigint;
  specMemoryReservationBytes?: bigint;
  specMemorySwapLimitBytes?: bigint;
  /** Processes (cgroup.procs) and threads (tasks) in the cgroup. */
  processes?: bigint;
  threads?: bigint;
  /** Open file descriptors of those processes (what /proc shows us). */
  fileDescriptors?: bigint;
}

export function readCgroupMetrics(path: string, root = CGROUP_ROOT): CgroupMetrics {
  path = cgroupFsPath(path);
  return isCgroupV2(root) ? readV2(join(root, path)) : readV1(path, root);
}

function readV2(dir: string): CgroupMetrics {
  const cpu = parseKeyed(readOpt(join(dir, 'cpu.stat')));
  const mem = parseKeyed(readOpt(join(dir, 'memory.stat')));
  const events = parseKeyed(readOpt(join(dir, 'memory.events')));
  const [quota, period] = (readOpt(join(dir, 'cpu.max')) ?? '').trim().split(/\s+/);
  const weight = num(readOpt(join(dir, 'cpu.weight')));
  const procs = pids(join(dir, 'cgroup.procs'));
  return {
    cpuUserNs: us(cpu['user_usec']),
    cpuSystemNs: us(cpu['system_usec']),
    cfsPeriods: cpu['nr_periods'],
    cfsThrottledPeriods: cpu['nr_throttled'],
    cfsThrottledNs: us(cpu['throttled_usec']),
    memoryCacheBytes: mem['file'],
    memoryMappedFileBytes: mem['file_mapped'],
    memorySwapBytes: num(readOpt(join(dir, 'memory.swap.current'))),
    memoryMaxUsageBytes: num(readOpt(join(dir, 'memory.peak'))),
    memoryFailcnt: events['max'],
    oomKills: events['oom_kill'],
    // cAdvisor's mapping of cgroup v2 weight back to v1 shares.
    specCpuShares: weight === undefined ? undefined : 2n + ((weight - 1n) * 262142n) / 9999n,
    specCpuQuota: num(quota),
    specCpuPeriod: num(period),
    specMemoryReservationBytes: num(readOpt(join(dir, 'memory.low'))),
    specMemorySwapLimitBytes: num(readOpt(join(dir, 'memory.swap.max'))),
    processes: procs === undefined ? undefined : BigInt(procs.length),
    threads: num(readOpt(join(dir, 'pids.current'))),
    fileDescriptors: fdsOf(procs),
  };
}

function readV1(path: string, root: string): CgroupMetrics {
  const c = (ctl: string, file: string) => readOpt(join(root, ctl, path, file));
  const cpu = parseKeyed(c('cpu', 'cpu.stat'));
  const mem = parseKeyed(c('memory', 'memory.stat'));
  const oom = parseKeyed(c('memory', 'memory.oom_control'));
  const procs = pids(join(root, 'cpu', path, 'cgroup.procs'));
  const memsw = num(c('memory', 'memory.memsw.usage_in_bytes'));
  const usage = num(c('memory', 'memory.usage_in_bytes'));
  const tasks = pids(join(root, 'cpu', path, 'tasks'));
  return {
    cpuUserNs: num(c('cpuacct', 'cpuacct.usage_user')),
    cpuSystemNs: num(c('cpuacct', 'cpuacct.usage_sys')),
    cfsPeriods: cpu['nr_periods'],
    cfsThrottledPeriods: cpu['nr_throttled'],
    cfsThrottledNs: cpu['throttled_time'],
    memoryCacheBytes: mem['total_cache'],
    memoryMappedFileBytes: mem['total_mapped_file'],
    memorySwapBytes: memsw !== undefined && usage !== undefined ? (memsw > usage ? memsw - usage : 0n) : undefined,
    memoryMaxUsageBytes: num(c('memory', 'memory.max_usage_in_bytes')),
    memoryFailcnt: num(c('memory', 'memory.failcnt')),
    oomKills: oom['oom_kill'],
    specCpuShares: num(c('cpu', 'cpu.shares')),
    // -1 (no quota) is not a number here: the metric is left out, as for v2's "max".
    specCpuQuota: num(c('cpu', 'cpu.cfs_quota_us')),
    specCpuPeriod: num(c('cpu', 'cpu.cfs_period_us')),
    specMemoryReservationBytes: num(c('memory', 'memory.soft_limit_in_bytes')),
    specMemorySwapLimitBytes: num(c('memory', 'memory.memsw.limit_in_bytes')),
    processes: procs === undefined ? undefined : BigInt(procs.length),
    threads: tasks === undefined ? undefined : BigInt(tasks.length),
    fileDescriptors: fdsOf(procs),
  };
}


const us = (v: bigint | undefined) => (v === undefined ? undefined : v * 1000n);

function pids(file: string): number[] | undefined {
  const text = readOpt(file);
  if (text === undefined) return undefined;
  return text.split('\n').filter((l) => /^\d+$/.test(l)).map(Number);
}

function fdsOf(procs: number[] | undefined): bigint | undefined {
  if (procs === undefined) return undefined;
  let n = 0;
  for (const pid of procs) {
    try {
      n += readdirSync(`/proc/${pid}/fd`).length;
    } catch {
      // exited since cgroup.procs was read
    }
  }
  return BigInt(n);
}
