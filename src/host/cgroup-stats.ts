import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CGROUP_ROOT, cgroupFsPath, isCgroupV2, num, parseKeyed, readOpt } from './cgroups.js';

/**
 * What a cgroup (pod or container) has used, read from its files on either cgroup
 * version: cpu, memory (with kubelet's working set), pids, PSI, OOM kills, swap. Apart
 * from cgroups.ts, which makes, fills and removes cgroups.
 */

export interface CgroupStats {
  /** ns since the epoch when read. */
  timestampNs: bigint;
  cpuUsageNs: bigint | undefined;
  memoryUsageBytes: bigint | undefined;
  memoryWorkingSetBytes: bigint | undefined;
  memoryRssBytes: bigint | undefined;
  memoryLimitBytes: bigint | undefined;
  pageFaults: bigint | undefined;
  majorPageFaults: bigint | undefined;
  processCount: bigint | undefined;
  /** Pressure stall information (cgroup v2 with PSI on: cpu.pressure, memory.pressure, io.pressure). */
  cpuPsi?: Psi | undefined;
  memoryPsi?: Psi | undefined;
  ioPsi?: Psi | undefined;
}

/** One line of a *.pressure file, named as the CRI's PsiData (so stats pass it on as it is). */
export interface PsiLine {
  /** Stalled time in µs since the cgroup was made. */
  Total: bigint;
  Avg10: number;
  Avg60: number;
  Avg300: number;
}
/** A *.pressure file, shaped as the CRI's PsiStats. */
export interface Psi {
  Some?: PsiLine;
  Full?: PsiLine;
}

/** A *.pressure file ("some avg10=0.00 avg60=0.00 avg300=0.00 total=0", then "full ..."); undefined when absent. */
export function parsePsi(text: string | undefined): Psi | undefined {
  if (text === undefined) return undefined;
  const out: Psi = {};
  for (const line of text.split('\n')) {
    const [kind, ...fields] = line.trim().split(/\s+/);
    if (kind !== 'some' && kind !== 'full') continue;
    const f = Object.fromEntries(fields.map((x) => x.split('=') as [string, string]));
    if (f['total'] === undefined || !/^\d+$/.test(f['total'])) continue;
    out[kind === 'some' ? 'Some' : 'Full'] = { Total: BigInt(f['total']), Avg10: Number(f['avg10'] ?? 0), Avg60: Number(f['avg60'] ?? 0), Avg300: Number(f['avg300'] ?? 0) };
  }
  return out.Some || out.Full ? out : undefined;
}

/** Reads usage of a cgroup (pod or container); missing files leave fields undefined. */
export function readCgroupStats(path: string, root = CGROUP_ROOT): CgroupStats {
  path = cgroupFsPath(path);
  const timestampNs = BigInt(Date.now()) * 1_000_000n;
  if (isCgroupV2(root)) {
    const dir = join(root, path);
    const cpu = parseKeyed(readOpt(join(dir, 'cpu.stat')));
    const mem = parseKeyed(readOpt(join(dir, 'memory.stat')));
    const usage = num(readOpt(join(dir, 'memory.current')));
    const limit = num(readOpt(join(dir, 'memory.max')));
    return {
      timestampNs,
      cpuUsageNs: cpu['usage_usec'] !== undefined ? cpu['usage_usec'] * 1000n : undefined,
      memoryUsageBytes: usage,
      memoryWorkingSetBytes: workingSet(usage, mem['inactive_file']),
      memoryRssBytes: mem['anon'],
      memoryLimitBytes: limit,
      pageFaults: mem['pgfault'],
      majorPageFaults: mem['pgmajfault'],
      processCount: num(readOpt(join(dir, 'pids.current'))),
      cpuPsi: parsePsi(readOpt(join(dir, 'cpu.pressure'))),
      memoryPsi: parsePsi(readOpt(join(dir, 'memory.pressure'))),
      ioPsi: parsePsi(readOpt(join(dir, 'io.pressure'))),
    };
  }
  const mdir = join(root, 'memory', path);
  const mem = parseKeyed(readOpt(join(mdir, 'memory.stat')));
  const usage = num(readOpt(join(mdir, 'memory.usage_in_bytes')));
  return {
    timestampNs,
    cpuUsageNs: num(readOpt(join(root, 'cpuacct', path, 'cpuacct.usage'))),
    memoryUsageBytes: usage,
    memoryWorkingSetBytes: workingSet(usage, mem['total_inactive_file']),
    memoryRssBytes: mem['total_rss'],
    memoryLimitBytes: num(readOpt(join(mdir, 'memory.limit_in_bytes'))),
    pageFaults: mem['total_pgfault'],
    majorPageFaults: mem['total_pgmajfault'],
    processCount: num(readOpt(join(root, 'pids', path, 'pids.current'))),
  };
}

/** How many processes the kernel's OOM killer ended in a cgroup (v1 memory.oom_control, v2 memory.events); 0 when unknown. */
export function readOomKills(path: string, root = CGROUP_ROOT): number {
  path = cgroupFsPath(path);
  const file = isCgroupV2(root) ? join(root, path, 'memory.events') : join(root, 'memory', path, 'memory.oom_control');
  return Number(parseKeyed(readOpt(file))['oom_kill'] ?? 0n);
}

/** Swap in use by a cgroup (v1: memsw minus memory usage); undefined when unknown. */
export function readSwapUsage(path: string, root = CGROUP_ROOT): bigint | undefined {
  path = cgroupFsPath(path);
  try {
    if (isCgroupV2(root)) return BigInt(readFileSync(join(root, path, 'memory.swap.current'), 'utf8').trim());
    const memsw = BigInt(readFileSync(join(root, 'memory', path, 'memory.memsw.usage_in_bytes'), 'utf8').trim());
    const mem = BigInt(readFileSync(join(root, 'memory', path, 'memory.usage_in_bytes'), 'utf8').trim());
    return memsw > mem ? memsw - mem : 0n;
  } catch {
    return undefined;
  }
}

/** kubelet's working set: usage minus inactive file cache, never negative. */
function workingSet(usage: bigint | undefined, inactiveFile: bigint | undefined): bigint | undefined {
  if (usage === undefined) return undefined;
  const ws = usage - (inactiveFile ?? 0n);
  return ws < 0n ? 0n : ws;
}
