import { spawn } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { abortError, internal } from '../core/errors.js';
import { isMountPoint, unpinNamespace } from './netns.js';
import { sysHelper } from './sys-helper.js';

/**
 * A pod's shared PID namespace needs a live init: a PID namespace whose pid 1 is gone
 * accepts no new processes. catatonit plays pause's part here. It is started inside the
 * pod's other namespaces (so `ps` in a container shows a coherent pod), its PID
 * namespace is pinned to a file for the containers to join, and it runs detached so it
 * outlives a daemon restart.
 */
export interface PodInitRequest {
  catatonit: string;
  pidnsPath: string;
  /** hostUsers: false: the PID namespace is made inside the pod's user namespace, so the pod's root owns it. */
  usernsPath?: string;
  netnsPath?: string;
  ipcnsPath?: string;
  utsnsPath?: string;
  /** kubelet gives the sandbox -998; clamped to the daemon's own when restrictOomScoreAdj. */
  oomScoreAdj?: number;
  restrictOomScoreAdj?: boolean;
  signal?: AbortSignal;
}

export interface PodInit {
  /** catatonit's pid in the host PID namespace. */
  pid: number;
}

export async function startPodInit(req: PodInitRequest): Promise<PodInit> {
  await mkdir(dirname(req.pidnsPath), { recursive: true, mode: 0o711 });
  closeSync(openSync(req.pidnsPath, 'w', 0o444));
  const enter: string[] = [];
  if (req.usernsPath) enter.push(`--user=${req.usernsPath}`);
  if (req.netnsPath) enter.push(`--net=${req.netnsPath}`);
  if (req.ipcnsPath) enter.push(`--ipc=${req.ipcnsPath}`);
  if (req.utsnsPath) enter.push(`--uts=${req.utsnsPath}`);
  // Inside the pod's user namespace unshare cannot bind-mount the new PID namespace onto
  // its file (the mount namespace is the host's): it is pinned from here once catatonit runs.
  const pinByUnshare = req.usernsPath === undefined;
  const argv = [...enter, '--', 'unshare', pinByUnshare ? `--pid=${req.pidnsPath}` : '--pid', '--fork', '--kill-child', req.catatonit, '-P'];
  const child = spawn('nsenter', argv, { detached: true, stdio: 'ignore' });
  child.unref();
  const wrapperPid = child.pid;
  if (wrapperPid === undefined) throw internal('cannot start the pod init: nsenter did not start');
  const deadline = Date.now() + 10_000;
  // nsenter execs unshare in place, which forks catatonit; find that child.
  for (;;) {
    if (req.signal?.aborted) {
      killQuietly(wrapperPid);
      throw abortError(req.signal, 'start pod init');
    }
    const pid = childOf(wrapperPid);
    if (pid !== undefined && !pinByUnshare && commOf(pid) === 'catatonit' && !isMountPoint(req.pidnsPath)) {
      try {
        await sysHelper.request('mount', { source: `/proc/${pid}/ns/pid`, target: req.pidnsPath, flags: ['bind'] }, { signal: req.signal });
      } catch (err) {
        killQuietly(wrapperPid);
        await unpinNamespace(req.pidnsPath).catch(() => {});
        throw internal(`cannot pin the pod init's PID namespace: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      }
    }
    if (pid !== undefined && isMountPoint(req.pidnsPath) && commOf(pid) === 'catatonit') {
      if (req.oomScoreAdj !== undefined) setOomScoreAdj(pid, req.oomScoreAdj, req.restrictOomScoreAdj ?? true);
      return { pid };
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      killQuietly(wrapperPid);
      await unpinNamespace(req.pidnsPath).catch(() => {});
      throw internal(`cannot start the pod init (${req.catatonit}): it did not come up`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Kills the pod init (and with it every process in the PID namespace) and unpins the namespace. */
export async function stopPodInit(pid: number | undefined, pidnsPath: string): Promise<void> {
  if (pid !== undefined && isPodInit(pid, pidnsPath)) {
    killQuietly(pid);
    const deadline = Date.now() + 5000;
    while (existsPid(pid) && commOf(pid) === 'catatonit' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  }
  await unpinNamespace(pidnsPath);
}

/** Whether pid is still our catatonit (not a recycled pid): same PID namespace as the pinned file. */
export function isPodInit(pid: number, pidnsPath: string): boolean {
  try {
    if (commOf(pid) !== 'catatonit') return false;
    if (!isMountPoint(pidnsPath)) return true;
    // A pid may be recycled: compare its PID namespace inode with the pinned file's.
    const link = readlinkSafe(`/proc/${pid}/ns/pid`);
    const ino = statIno(pidnsPath);
    return link === undefined || ino === undefined || link === `pid:[${ino}]`;
  } catch {
    return false;
  }
}

/** The catatonit whose PID namespace is pinned at pidnsPath, found by scanning /proc (after a crash lost its pid). */
export function findPodInit(pidnsPath: string): number | undefined {
  const ino = statIno(pidnsPath);
  if (ino === undefined) return undefined;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (commOf(pid) === 'catatonit' && readlinkSafe(`/proc/${pid}/ns/pid`) === `pid:[${ino}]`) return pid;
  }
  return undefined;
}

function readlinkSafe(p: string): string | undefined {
  try {
    return readlinkSync(p);
  } catch {
    return undefined;
  }
}

function statIno(p: string): string | undefined {
  try {
    return String(statSync(p).ino);
  } catch {
    return undefined;
  }
}

function childOf(pid: number): number | undefined {
  try {
    const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    return kids.length > 0 ? Number(kids[0]) : undefined;
  } catch {
    return undefined;
  }
}

function commOf(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

function existsPid(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/**
 * Sets oom_score_adj. With `restrict`, never below the daemon's own: without
 * CAP_SYS_RESOURCE lowering it fails (containerd's restrict_oom_score_adj).
 */
export function setOomScoreAdj(pid: number, wanted: number, restrict = true): void {
  const value = restrict ? Math.max(wanted, ownOomScoreAdj()) : wanted;
  try {
    writeFileSync(`/proc/${pid}/oom_score_adj`, String(value));
  } catch {
    // best effort: the init still works with the inherited value
  }
}

export function ownOomScoreAdj(): number {
  try {
    return Number(readFileSync('/proc/self/oom_score_adj', 'utf8').trim());
  } catch {
    return 0;
  }
}

/** Whether this process holds CAP_SYS_RESOURCE (bit 24 of CapEff), i.e. may lower oom_score_adj. */
export function hasCapSysResource(): boolean {
  try {
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return m !== null && (BigInt(`0x${m[1]}`) & (1n << 24n)) !== 0n;
  } catch {
    return false;
  }
}

/** runtime.restrict_oom_score_adj resolved: "auto" restricts when CAP_SYS_RESOURCE is missing. */
export function restrictOomScoreAdj(setting: boolean | 'auto'): boolean {
  return setting === 'auto' ? !hasCapSysResource() : setting;
}
