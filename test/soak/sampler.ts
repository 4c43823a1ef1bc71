import { readdirSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';

// What the soak samples from the daemon's node process every ~10 s. RSS, PSS and the
// open fds come from /proc. cricketd exposes no heap figure of its own, so the soak
// starts it with --report-on-signal (NODE_OPTIONS) and reads the V8 heap and libuv
// handle count from the diagnostic report node writes on SIGUSR2 (a few ms of work,
// far lighter than --inspect).

export interface ProcSample {
  rssKiB: number;
  pssKiB: number;
  fds: number;
  /** V8 heap in use, all spaces (new space included, so it saw-tooths with scavenges). */
  heapUsed: number;
  /** Old, code and large-object spaces: what survives scavenges, the steadier figure. */
  heapOld: number;
  heapTotal: number;
  /** libuv handles (sockets, pipes, timers, processes). */
  handles: number;
}

function kib(file: string, key: string): number {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(readFileSync(file, 'utf8'));
  return m ? Number(m[1]) : 0;
}

interface Report {
  javascriptHeap: { usedMemory: number; totalMemory: number; heapSpaces: Record<string, { used: number }> };
  libuv: unknown[];
}

/** Reads the report node wrote for `pid` (waits up to 5 s), then deletes it. */
async function report(pid: number, dir: string): Promise<Report | undefined> {
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    for (const f of readdirSync(dir).filter((n) => n.includes(`.${pid}.`) && n.endsWith('.json'))) {
      try {
        const r = JSON.parse(readFileSync(join(dir, f), 'utf8')) as Report;
        unlinkSync(join(dir, f));
        return r;
      } catch {
        // still being written
      }
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return undefined;
}

/** One sample; undefined if the process went away meanwhile. */
export async function sampleProcess(pid: number, reportDir: string): Promise<ProcSample | undefined> {
  try {
    const rssKiB = kib(`/proc/${pid}/status`, 'VmRSS');
    const pssKiB = kib(`/proc/${pid}/smaps_rollup`, 'Pss');
    const fds = readdirSync(`/proc/${pid}/fd`).length;
    process.kill(pid, 'SIGUSR2');
    const r = await report(pid, reportDir);
    if (!r) return undefined;
    const sp = r.javascriptHeap.heapSpaces;
    const heapOld = ['old_space', 'code_space', 'large_object_space'].reduce((n, k) => n + (sp[k]?.used ?? 0), 0);
    return {
      rssKiB,
      pssKiB,
      fds,
      heapUsed: r.javascriptHeap.usedMemory,
      heapOld,
      heapTotal: r.javascriptHeap.totalMemory,
      handles: r.libuv.length,
    };
  } catch {
    return undefined;
  }
}

/** Removes reports that were never read (a sample cut short by a SIGKILL). */
export function clearReports(dir: string): void {
  for (const f of readdirSync(dir)) unlinkSync(join(dir, f));
}
