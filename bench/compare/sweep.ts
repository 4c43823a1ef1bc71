import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mountsUnder, pidsWhere } from './procfs.js';
import { removeCgroupTree, removeIptablesRules, unmountUnder } from './runtime.js';

// The forceful half of bench-compare's cleanup. The graceful half (every pod stopped
// and removed through its runtime, the daemons stopped) runs at the end of each run and
// on SIGINT/SIGTERM; this one removes what a run killed with SIGKILL (or a cleanup cut
// short) left behind: it finds everything from the run's own dir, so it touches only
// processes, mounts, links and rules that dir names. Each run writes <base>/bench.json
// (its pid and cgroup root); the next run sweeps the dirs whose pid is gone.

export const BASE_PREFIX = 'cricket-bench-compare-';
const SHIM_SOCKET_DIR = '/run/containerd/s';

interface RunRecord {
  pid: number;
  cgroupRoot: string;
}

export function writeRunRecord(base: string, cgroupRoot: string): void {
  writeFileSync(join(base, 'bench.json'), JSON.stringify({ pid: process.pid, cgroupRoot } satisfies RunRecord));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Removes what is left of one run's dir; returns what it found. */
export function sweepRun(base: string, cgroupRoot: string | undefined): string[] {
  const found: string[] = [];
  const kill = (what: string, pids: number[]) => {
    if (pids.length === 0) return;
    found.push(`${pids.length} ${what} (killed)`);
    for (const p of pids) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // gone
      }
    }
  };
  const ctdDir = join(base, 'containerd');
  const criDir = join(base, 'cricket');
  // Daemons first, so that nothing restarts what follows.
  kill('containerd', pidsWhere((a) => a[0] === '/usr/bin/containerd' && a.includes(join(ctdDir, 'config.toml'))));
  kill('cricketd', pidsWhere((a) => a.some((x) => x.startsWith(join(criDir, 'daemon') + '/')) && a.some((x) => x.endsWith('daemon/main.js'))));
  kill('containerd shims', pidsWhere((a) => a[0]!.endsWith('containerd-shim-runc-v2') && a.includes(join(ctdDir, 'containerd.sock'))));
  kill('conmon', pidsWhere((a) => a[0]!.endsWith('conmon') && a.some((x) => x.includes(join(criDir, 'daemon', 'run')))));
  spawnSync('sleep', ['0.2']);
  // Containers runc still knows (their monitor is gone): runc kills and deletes them.
  const ids: string[] = [];
  for (const root of [join(ctdDir, 'runc', 'k8s.io'), join(criDir, 'daemon', 'run', 'runc')]) {
    if (!existsSync(root)) continue;
    for (const id of readdirSync(root)) {
      spawnSync('/usr/sbin/runc', ['--root', root, 'delete', '--force', id], { timeout: 20_000 });
      ids.push(id);
    }
  }
  if (ids.length > 0) found.push(`${ids.length} runc containers (deleted)`);
  // Shim sockets are named sha256(<address>/<namespace>/<sandbox id>); a sandbox's pause container has its id.
  for (const id of ids) {
    const s = join(SHIM_SOCKET_DIR, createHash('sha256').update(join(ctdDir, 'containerd.sock', 'k8s.io', id)).digest('hex'));
    if (existsSync(s)) {
      rmSync(s, { force: true });
      found.push(`shim socket ${s} (removed)`);
    }
  }
  for (const d of [SHIM_SOCKET_DIR, '/run/containerd']) {
    try {
      if (readdirSync(d).length === 0) rmdirSync(d); // made by our shims; a containerd makes it again
    } catch {
      // absent, or not empty: someone else's
    }
  }
  const mounts = mountsUnder(base);
  if (mounts.length > 0) found.push(`${mounts.length} mounts (unmounted)`);
  unmountUnder(base);
  for (const dir of [ctdDir, criDir]) {
    const conf = join(dir, 'cni-conf', '10-test.conflist');
    if (!existsSync(conf)) continue;
    const list = JSON.parse(readFileSync(conf, 'utf8')) as { name: string; plugins: { type: string; bridge?: string; ipam?: { ranges?: { subnet: string }[][] } }[] };
    const br = list.plugins.find((p) => p.type === 'bridge');
    const subnet = br?.ipam?.ranges?.[0]?.[0]?.subnet;
    const prefix = subnet?.replace(/\.0\/24$/, '');
    const rules = removeIptablesRules(list.name, prefix);
    if (rules > 0) found.push(`${rules} iptables rules of ${list.name} (removed)`);
    if (br?.bridge && spawnSync('ip', ['link', 'show', br.bridge]).status === 0) {
      spawnSync('ip', ['link', 'del', br.bridge]);
      found.push(`bridge ${br.bridge} (deleted)`);
    }
  }
  if (cgroupRoot) {
    const busy = removeCgroupTree(cgroupRoot);
    if (busy.length > 0) found.push(`${busy.length} cgroups still busy under ${cgroupRoot}`);
  }
  if (mountsUnder(base).length === 0) rmSync(base, { recursive: true, force: true });
  else found.push(`${base} kept: mounts still there`);
  return found;
}

/** Sweeps every earlier run's dir whose bench process is gone. */
export function sweepDeadRuns(): string[] {
  const found: string[] = [];
  for (const e of readdirSync(tmpdir())) {
    if (!e.startsWith(BASE_PREFIX)) continue;
    const base = join(tmpdir(), e);
    let rec: RunRecord;
    try {
      rec = JSON.parse(readFileSync(join(base, 'bench.json'), 'utf8')) as RunRecord;
    } catch {
      continue; // being set up by a run right now, or not ours
    }
    if (alive(rec.pid)) continue;
    for (const f of sweepRun(base, rec.cgroupRoot)) found.push(`${base}: ${f}`);
  }
  return found;
}
