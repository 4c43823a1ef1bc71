import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { CriClient } from '../../src/client/cri-client.js';
import { ipamReservations, vethsOn, type TestNet } from '../../test/helpers/pod-net.js';
import { mountsUnder } from './procfs.js';

/** One runtime under test, as the workloads see it: a CRI endpoint and its processes. */
export interface Runtime {
  readonly name: string;
  readonly client: CriClient;
  /** The private network its pods join. */
  readonly net: TestNet;
  /** Where pod log directories go (allowed by the runtime). */
  readonly logRoot: string;
  /** A private cgroup path under which each pod gets its cgroup parent. */
  readonly cgroupRoot: string;
  /** The daemon's pid (the process that serves the CRI). */
  daemonPid(): number;
  /** Per-pod helper processes it started and still has (conmon, shims). */
  helperPids(): number[];
  /** What the helpers are called in the table. */
  readonly helperName: string;
  /** Removes every pod, stops the daemon, removes what it made; returns what could not be removed. */
  destroy(): Promise<string[]>;
}

export const CGROUP_ROOT = '/sys/fs/cgroup';

/** Every hierarchy that holds cgroup path `path` (v1: one per controller; v2: the unified one). */
function cgroupDirs(path: string): string[] {
  const out: string[] = [];
  for (const h of readdirSync(CGROUP_ROOT)) {
    const d = join(CGROUP_ROOT, h, path);
    if (existsSync(d)) out.push(d);
  }
  if (existsSync(join(CGROUP_ROOT, 'cgroup.controllers')) && existsSync(join(CGROUP_ROOT, path))) out.push(join(CGROUP_ROOT, path));
  return out;
}

/** Removes a cgroup subtree (empty cgroups only: rmdir, deepest first) in every hierarchy; returns the ones left. */
export function removeCgroupTree(path: string): string[] {
  const left: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(join(d, e.name));
    try {
      rmdirSync(d);
    } catch {
      left.push(d);
    }
  };
  for (const d of cgroupDirs(path)) walk(d);
  return left;
}

/** Unmounts (lazily) every mount under dir, deepest first. */
export function unmountUnder(dir: string): void {
  for (const mp of mountsUnder(dir)) spawnSync('umount', ['-l', mp]);
}

/**
 * Removes the iptables rules that name a CNI network (the bridge plugin's masquerade
 * rules carry its name in a comment and match its subnet) and the chains only they jump
 * to; returns how many rules there were.
 */
export function removeIptablesRules(netName: string, subnetPrefix: string | undefined): number {
  let removed = 0;
  for (const table of ['nat', 'filter']) {
    const rules = spawnSync('iptables', ['-t', table, '-S'], { encoding: 'utf8' }).stdout.split('\n');
    const ours = rules.filter((l) => l.startsWith('-A ') && (l.includes(netName) || (subnetPrefix !== undefined && l.includes(`${subnetPrefix}.`))));
    const chains = new Set<string>();
    for (const r of ours) {
      const m = / -j (CNI-[0-9a-f]{24})\b/.exec(r);
      if (m) chains.add(m[1]!);
      spawnSync('iptables', ['-t', table, '-D', ...splitRule(r.slice(3))]);
      removed++;
    }
    for (const c of chains) {
      spawnSync('iptables', ['-t', table, '-F', c]);
      spawnSync('iptables', ['-t', table, '-X', c]);
    }
  }
  return removed;
}

export const removeIptablesOf = (net: TestNet): number => removeIptablesRules(net.name, net.subnetPrefix);

/** Splits an `iptables -S` rule into argv, keeping quoted comments whole. */
function splitRule(rule: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  for (let m = re.exec(rule); m; m = re.exec(rule)) out.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]!);
  return out;
}

/** What of a runtime's network is still there: veths on its bridge, IP reservations, iptables rules. */
export function netLeftovers(net: TestNet): string[] {
  const left: string[] = [];
  const veths = vethsOn(net.bridge);
  if (veths.length > 0) left.push(`${veths.length} veths on ${net.bridge}`);
  const ips = ipamReservations(net);
  if (ips.length > 0) left.push(`${ips.length} IP reservations in ${net.ipamDir}`);
  const rules = ['nat', 'filter']
    .flatMap((t) => spawnSync('iptables', ['-t', t, '-S'], { encoding: 'utf8' }).stdout.split('\n'))
    .filter((l) => l.startsWith('-A ') && (l.includes(net.name) || l.includes(`${net.subnetPrefix}.`)));
  if (rules.length > 0) left.push(`${rules.length} iptables rules for ${net.subnetPrefix}.0/24`);
  return left;
}

/**
 * The host side of a runtime's run, once its daemon is gone: what of its network is
 * still there (then removed), cgroups that stay busy, mounts and files under its dir.
 */
export function releaseHost(net: TestNet, cgroupRoot: string, dir: string): string[] {
  const left = netLeftovers(net).map((s) => `${s} (removed)`);
  removeIptablesOf(net);
  net.destroy();
  left.push(...removeCgroupTree(cgroupRoot).map((c) => `cgroup ${c} busy`));
  unmountUnder(dir);
  rmSync(dir, { recursive: true, force: true });
  return left;
}

/** Stops and removes every pod a runtime lists (containers go with their pod). */
export async function removeAllPods(client: CriClient): Promise<void> {
  const { items } = await client.call('ListPodSandbox', {}, { timeoutMs: 30_000 });
  for (let i = 0; i < items.length; i += 10) {
    await Promise.all(
      items.slice(i, i + 10).map(async (p) => {
        await client.call('StopPodSandbox', { podSandboxId: p.id }, { timeoutMs: 60_000 }).catch(() => {});
        await client.call('RemovePodSandbox', { podSandboxId: p.id }, { timeoutMs: 60_000 }).catch(() => {});
      }),
    );
  }
}
