import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { invalidArgument } from '../core/errors.js';
import { sysHelper } from './sys-helper.js';

/**
 * Pod namespaces pinned to files (as `ip netns` and CRI-O's pinns do): a short-lived
 * child of the sys helper (sys-helper-source.ts) unshares them and bind-mounts each onto
 * its FILE, as `unshare --net=FILE` does, so it outlives the process that made it and
 * needs no pause container. The same child sets the pod's hostname, brings `lo` up and
 * writes the namespaced sysctls, because those must be done from inside the new
 * namespaces.
 */
/** One range of a user namespace's uid_map or gid_map (the CRI's IDMapping). */
export interface IdMapping {
  containerId: number;
  hostId: number;
  length: number;
}

/** A pod's own user namespace: pinned at path, with exactly these mappings. */
export interface UsernsPin {
  path: string;
  uidMappings: readonly IdMapping[];
  gidMappings: readonly IdMapping[];
}

export interface PinRequest {
  /**
   * A new user namespace, pinned first; the net/ipc/uts namespaces are then made inside
   * it, so they belong to the pod's root (runc can mount sysfs, mqueue and /proc there).
   */
  user?: UsernsPin;
  netPath?: string;
  ipcPath?: string;
  utsPath?: string;
  /** Written to /proc/sys/kernel/hostname inside the new UTS namespace. */
  hostname?: string;
  /** Namespaced sysctls, already validated (see sysctlProcPath). */
  sysctls?: Readonly<Record<string, string>>;
  signal?: AbortSignal;
  timeoutMs?: number;
}

export async function pinNamespaces(req: PinRequest): Promise<void> {
  const paths: { net?: string; ipc?: string; uts?: string } = {};
  for (const [kind, path] of [
    ['net', req.netPath],
    ['ipc', req.ipcPath],
    ['uts', req.utsPath],
  ] as const) {
    if (path === undefined) continue;
    await mkdir(dirname(path), { recursive: true, mode: 0o711 });
    // A namespace is bind-mounted onto an existing file.
    closeSync(openSync(path, 'w', 0o444));
    paths[kind] = path;
  }
  const sysctls: [string, string][] = Object.entries(req.sysctls ?? {}).map(([k, v]) => [sysctlProcPath(k), v]);
  const hostname = req.utsPath && req.hostname ? { hostname: req.hostname } : {};
  const opts = { signal: req.signal, timeoutMs: req.timeoutMs ?? 30_000 };
  if (req.user) {
    const u = req.user;
    await mkdir(dirname(u.path), { recursive: true, mode: 0o711 });
    closeSync(openSync(u.path, 'w', 0o444));
    const triple = (m: IdMapping): [number, number, number] => [m.containerId, m.hostId, m.length];
    await sysHelper.request('userns', { user: u.path, uidMappings: u.uidMappings.map(triple), gidMappings: u.gidMappings.map(triple), ...paths, ...hostname, sysctls }, opts);
    return;
  }
  if (Object.keys(paths).length === 0) return;
  await sysHelper.request('pin', { ...paths, ...hostname, sysctls }, opts);
}

/** Unmounts and removes one pinned namespace file; a missing file is fine. */
export async function unpinNamespace(path: string, signal?: AbortSignal): Promise<void> {
  await sysHelper.request('umount', { target: path }, { signal });
  await rm(path, { force: true });
}

/** Whether path is currently a mount point in our mount namespace (exact match in mountinfo). */
export function isMountPoint(path: string): boolean {
  const info = readFileSync('/proc/self/mountinfo', 'utf8');
  for (const line of info.split('\n')) {
    const target = line.split(' ')[4];
    if (target !== undefined && unescapeMount(target) === path) return true;
  }
  return false;
}

/** Every mount point at or below dir in our mount namespace, deepest first (the order to unmount them in). */
export function mountPointsUnder(dir: string): string[] {
  const info = readFileSync('/proc/self/mountinfo', 'utf8');
  const out = new Set<string>();
  for (const line of info.split('\n')) {
    const raw = line.split(' ')[4];
    if (raw === undefined) continue;
    const target = unescapeMount(raw);
    if (target === dir || target.startsWith(`${dir}/`)) out.add(target);
  }
  return [...out].sort((a, b) => b.split('/').length - a.split('/').length || b.localeCompare(a));
}

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/**
 * Sysctls a pod may set because the kernel namespaces them: IPC ones (kernel.shm*,
 * kernel.msg*, kernel.sem, fs.mqueue.*) with a pod IPC namespace, net.* with a pod
 * network namespace. Keys use dots or slashes as kubelet allows.
 */
export function sysctlKind(key: string): 'ipc' | 'net' | undefined {
  const k = key.replace(/\//g, '.');
  if (/^kernel\.(shm(max|all|mni|_rmid_forced)|msg(max|mnb|mni)|sem)$/.test(k) || k.startsWith('fs.mqueue.')) return 'ipc';
  if (k.startsWith('net.')) return 'net';
  return undefined;
}

/** The /proc/sys relative path of a sysctl key; dots separate unless the key uses slashes. */
export function sysctlProcPath(key: string): string {
  if (!/^[A-Za-z0-9_.\/-]+$/.test(key) || key.includes('..') || key.startsWith('/') || key.startsWith('.')) {
    throw invalidArgument(`sysctl "${key}" is not a valid sysctl name`);
  }
  return key.includes('/') ? key : key.replace(/\./g, '/');
}

export interface InterfaceCounters {
  name: string;
  rxBytes: bigint;
  rxErrors: bigint;
  txBytes: bigint;
  txErrors: bigint;
  // For the cAdvisor-named CRI metrics; optional so older readers and fakes need not give them.
  rxPackets?: bigint;
  rxDropped?: bigint;
  txPackets?: bigint;
  txDropped?: bigint;
}

/** /proc/net/dev as seen inside a network namespace. */
export async function netDevCounters(netnsPath: string, signal?: AbortSignal): Promise<InterfaceCounters[]> {
  const r = await sysHelper.request('netdev', { netns: netnsPath }, { signal, timeoutMs: 10_000 });
  return parseNetDev(r.text);
}

export function parseNetDev(text: string): InterfaceCounters[] {
  const out: InterfaceCounters[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*([^:\s]+):\s*(.*)$/.exec(line);
    if (!m) continue;
    const f = m[2]!.trim().split(/\s+/).map((x) => BigInt(x));
    if (f.length < 16) continue;
    // receive: bytes packets errs drop ...; transmit starts at field 8.
    out.push({
      name: m[1]!,
      rxBytes: f[0]!,
      rxPackets: f[1]!,
      rxErrors: f[2]!,
      rxDropped: f[3]!,
      txBytes: f[8]!,
      txPackets: f[9]!,
      txErrors: f[10]!,
      txDropped: f[11]!,
    });
  }
  return out;
}
