import { readdirSync, readFileSync } from 'node:fs';

// What bench-compare reads from /proc: memory as PSS (a shared page counts once
// across the processes sharing it, so N helpers of one binary are not counted N times
// over) and CPU as utime+stime, plus the cutime+cstime of children the process reaped
// (runc, CNI plugins, nsenter ... spawned by the daemon or a helper).

/** PSS of one process in KiB (smaps_rollup), 0 if it is gone. */
export function pssKiB(pid: number): number {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/**
 * Private memory (USS: Private_Clean + Private_Dirty) of one process in KiB, 0 if gone.
 * PSS also counts a share of pages shared with other processes — for cricketd, node's
 * ~41 MiB of code, divided among every node process on the machine — so a daemon's PSS
 * moves with what else runs; its private memory does not.
 */
export function privateKiB(pid: number): number {
  try {
    const t = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const f = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(t)?.[1] ?? 0);
    return f('Private_Clean') + f('Private_Dirty');
  } catch {
    return 0;
  }
}

/** A process's own CPU (utime+stime) and that of the children it reaped (cutime+cstime), in clock ticks (USER_HZ, 100 on Linux x86); undefined if gone. */
export function cpuParts(pid: number): { self: number; children: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: fields start after the last ')'.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // f[0] is field 3 (state); utime is field 14, stime 15, cutime 16, cstime 17.
    return { self: Number(f[11]) + Number(f[12]), children: Number(f[13]) + Number(f[14]) };
  } catch {
    return undefined;
  }
}

export function cpuTicks(pid: number): number | undefined {
  const p = cpuParts(pid);
  return p && p.self + p.children;
}

export const TICK_S = 0.01;

/** Pids whose command line (NUL-separated) satisfies the predicate. */
export function pidsWhere(pred: (argv: string[]) => boolean): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
      if (argv[argv.length - 1] === '') argv.pop();
      if (argv.length > 0 && pred(argv)) out.push(Number(p));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** Sum of CPU ticks of a set of processes now, keyed by pid (to diff two samples). */
export function cpuSample(pids: number[]): Map<number, number> {
  const m = new Map<number, number>();
  for (const p of pids) {
    const t = cpuTicks(p);
    if (t !== undefined) m.set(p, t);
  }
  return m;
}

/** CPU seconds spent between two samples by processes present in both, plus new ones in full. */
export function cpuSecondsBetween(before: Map<number, number>, after: Map<number, number>): number {
  let ticks = 0;
  for (const [pid, t] of after) ticks += t - (before.get(pid) ?? 0);
  return ticks * TICK_S;
}

export function loadAverage(): string {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  } catch {
    return '?';
  }
}

/** Lines of /proc/self/mountinfo whose mount point lies under dir, deepest first. */
export function mountsUnder(dir: string): string[] {
  const points: string[] = [];
  for (const l of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const mp = l.split(' ')[4];
    if (mp === undefined) continue;
    const decoded = mp.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (decoded === dir || decoded.startsWith(`${dir}/`)) points.push(decoded);
  }
  return points.sort((a, b) => b.length - a.length);
}
