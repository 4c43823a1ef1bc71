import { existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { invalidArgument } from '../core/errors.js';

/**
 * Cgroup helpers for pods and containers, for the cgroupfs layout of either a cgroup v1
 * (hybrid) host — one hierarchy per controller under /sys/fs/cgroup/<controller> — or a
 * pure v2 host. Paths given here are "cgroup paths": absolute, relative to a
 * controller's root, e.g. /kubepods/besteffort/pod123.
 *
 *   ensureCgroup(path)      mkdir in every hierarchy; returns what it created
 *   removeCgroup(created)   rmdir what ensureCgroup created, deepest first
 *   addProcess(path, pid)   move a process in
 *
 * What a cgroup has used (stats, PSI, OOM kills, swap) is read in cgroup-stats.ts.
 */
export const CGROUP_ROOT = '/sys/fs/cgroup';
const V1_CONTROLLERS = ['cpu', 'cpuacct', 'cpuset', 'memory', 'pids', 'blkio', 'devices', 'freezer', 'hugetlb', 'net_cls', 'perf_event'];

export function isCgroupV2(root = CGROUP_ROOT): boolean {
  return existsSync(join(root, 'cgroup.controllers'));
}

/** The hierarchy directories (controller roots) present on this host. */
export function hierarchies(root = CGROUP_ROOT): string[] {
  if (isCgroupV2(root)) return [root];
  // cpu and cpuacct may be co-mounted as cpu,cpuacct with symlinks; dedupe by real dir.
  const seen = new Set<string>();
  const out: string[] = [];
  for (const c of V1_CONTROLLERS) {
    const dir = join(root, c);
    if (!existsSync(join(dir, 'cgroup.procs'))) continue;
    let real = dir;
    try {
      real = realpathSync(dir);
    } catch {
      // keep dir
    }
    if (seen.has(real)) continue;
    seen.add(real);
    out.push(dir);
  }
  // The named systemd hierarchy keeps process tracking consistent for tools that read it.
  if (existsSync(join(root, 'systemd', 'cgroup.procs'))) out.push(join(root, 'systemd'));
  // Hybrid hosts: runc also makes the container's path under the unified (v2) mount
  // and removes only the leaf, so the pod's dirs there are ours to create and remove.
  if (existsSync(join(root, 'unified', 'cgroup.procs'))) out.push(join(root, 'unified'));
  return out;
}

/** Directory of a cgroup path in one controller's hierarchy (v1) or the unified one (v2). */
export function controllerDir(controller: string, path: string, root = CGROUP_ROOT): string {
  return isCgroupV2(root) ? join(root, path) : join(root, controller, path);
}

export type CgroupDriver = 'cgroupfs' | 'systemd';

/**
 * Validates a cgroup parent from the CRI and returns the cgroupfs path. The form must
 * fit the driver, as kubelet sends it: with "cgroupfs" an absolute path
 * (/kubepods/burstable/pod1), with "systemd" a slice name (kubepods-burstable-pod1.slice),
 * which expands to /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice
 * as systemd lays it out (each '-' is a level).
 */
export function toCgroupPath(parent: string, driver: CgroupDriver): string {
  if (driver === 'systemd') {
    if (parent.startsWith('/')) {
      throw invalidArgument(`cgroup_parent "${parent}" is a cgroupfs path, but cgroup_driver is "systemd": give a systemd slice name like kubepods-besteffort-pod1.slice`);
    }
    return slicePath(parent);
  }
  if (!parent.startsWith('/')) {
    const hint = parent.endsWith('.slice') ? ` ("${parent}" is a systemd slice name, but cgroup_driver is "cgroupfs")` : '';
    throw invalidArgument(`cgroup_parent "${parent}" must be an absolute cgroup path like /kubepods/pod1${hint}`);
  }
  const segs = parent.split('/').filter(Boolean);
  for (const s of segs) {
    if (s === '.' || s === '..' || !/^[A-Za-z0-9_.:@-]+$/.test(s)) throw invalidArgument(`cgroup_parent "${parent}" has an invalid element "${s}"`);
  }
  return `/${segs.join('/')}`;
}

/** A slice name's cgroupfs path: a-b-c.slice → /a.slice/a-b.slice/a-b-c.slice ("-.slice" is the root). */
export function slicePath(slice: string): string {
  if (!/^[A-Za-z0-9_.:-]+\.slice$/.test(slice)) {
    throw invalidArgument(`cgroup_parent "${slice}" is not a systemd slice name (like kubepods-besteffort-pod1.slice)`);
  }
  const stem = slice.slice(0, -'.slice'.length);
  if (stem === '-') return '/';
  const parts = stem.split('-');
  // systemd refuses empty levels: a leading, trailing or doubled '-'.
  if (parts.some((p) => p === '')) throw invalidArgument(`cgroup_parent "${slice}" is not a valid slice name: a '-' starts, ends or doubles in it`);
  const out: string[] = [];
  for (let i = 1; i <= parts.length; i++) out.push(`${parts.slice(0, i).join('-')}.slice`);
  return `/${out.join('/')}`;
}

/** The pod cgroup when the CRI gives no parent: /cricket/<id>, or the slice cricket-<id>.slice. */
export function defaultPodCgroup(podId: string, driver: CgroupDriver): string {
  return driver === 'systemd' ? slicePath(`cricket-${podId}.slice`) : `/cricket/${podId}`;
}

/**
 * The OCI linux.cgroupsPath of a container (or of the pod init) with id under the pod's
 * cgroup: cgroupfs a leaf directory named by the id (kubelet maps leaf names to ids);
 * systemd runc's "slice:prefix:name" form, a scope cricket-<id>.scope in the pod's slice.
 */
export function containerCgroupsPath(podCgroup: string, id: string, driver: CgroupDriver): string {
  if (driver === 'systemd') {
    const slice = podCgroup.split('/').filter(Boolean).pop() ?? '-.slice';
    return `${slice}:cricket:${id}`;
  }
  return `${podCgroup === '/' ? '' : podCgroup}/${id}`;
}

/** The cgroup a container's cgroupsPath (either form) sits in: its pod's. */
export function parentCgroup(cgroupsPath: string): string {
  const fs = cgroupFsPath(cgroupsPath);
  const i = fs.lastIndexOf('/');
  return i <= 0 ? '/' : fs.slice(0, i);
}

/**
 * A cgroupsPath as the kernel lays it out, relative to a controller root: runc's
 * systemd form "slice:prefix:name" becomes <slice's path>/<prefix>-<name>.scope (as
 * runc names the unit); a cgroupfs path is returned as it is. Every reader below
 * takes either form, so records keep what was given to runc.
 */
export function cgroupFsPath(cgroupsPath: string): string {
  const m = /^([^/:]*):([^:]*):([^:]+)$/.exec(cgroupsPath);
  if (!m) return cgroupsPath;
  const [, slice, prefix, name] = m as unknown as [string, string, string, string];
  const parent = slicePath(slice === '' ? '-.slice' : slice);
  const unit = name.endsWith('.slice') ? name : `${prefix === '' ? '' : `${prefix}-`}${name}.scope`;
  return `${parent === '/' ? '' : parent}/${unit}`;
}

/**
 * Creates the cgroup in every hierarchy, parents included. cpuset directories start
 * empty on v1 and refuse tasks (ENOSPC), so every level — made by us, by another pod
 * a moment ago, by runc or by another daemon — gets its parent's cpus and mems if it
 * has none yet. Returns the directories it created (deepest last) for removeCgroup.
 *
 * Shared parents (the default /cricket, a kubelet QoS level) are where pods meet:
 *   - two pods creating one level share one mkdir+initialisation (single flight), and
 *     neither goes below it before it is initialised;
 *   - a teardown in this process leaves alone a directory an ensureCgroup is passing
 *     through (see inUse); one in another process may still rmdir it under us, so a
 *     level that vanishes (ENOENT, or ENODEV on a file opened just before) makes us
 *     walk that hierarchy again from its root.
 */
export async function ensureCgroup(path: string, root = CGROUP_ROOT): Promise<string[]> {
  const created: string[] = [];
  const segs = path.split('/').filter(Boolean);
  const pinned = hierarchies(root).flatMap((h) => levelsOf(h, segs));
  for (const d of pinned) inUse.set(d, (inUse.get(d) ?? 0) + 1);
  const unpin = () => {
    for (const d of pinned) {
      const n = (inUse.get(d) ?? 1) - 1;
      if (n > 0) inUse.set(d, n);
      else inUse.delete(d);
    }
  };
  try {
    const v2 = isCgroupV2(root);
    for (const h of hierarchies(root)) {
      const cpuset = h.endsWith('/cpuset');
      for (let attempt = 0; ; attempt++) {
        try {
          let dir = h;
          for (const s of segs) {
            const parent = dir;
            dir = join(dir, s);
            if (await ensureLevel(parent, dir, cpuset, v2)) created.push(dir);
          }
          break;
        } catch (err) {
          // A level was removed between our steps (another daemon's teardown): again from
          // the top. ENODEV is the same race one step later: the file was opened just
          // before its cgroup was removed, and the read or write then finds no cgroup.
          const code = (err as NodeJS.ErrnoException).code;
          if ((code === 'ENOENT' || code === 'ENODEV') && attempt < VANISHED_RETRIES) continue;
          throw err;
        }
      }
    }
  } catch (err) {
    unpin();
    await removeCgroup(created);
    throw err;
  }
  unpin();
  return created;
}

// How often one hierarchy is walked again when a level keeps vanishing under us.
const VANISHED_RETRIES = 5;

/** Directories ensureCgroup calls are walking right now (count per dir): not to be removed. */
const inUse = new Map<string, number>();

/** One mkdir+initialisation per directory at a time; later callers wait for it. */
const levelsInFlight = new Map<string, Promise<boolean>>();

function levelsOf(h: string, segs: readonly string[]): string[] {
  const out: string[] = [];
  let dir = h;
  for (const s of segs) out.push((dir = join(dir, s)));
  return out;
}

/**
 * Makes dir exist, initialised (cpuset: cpus and mems set), with its parent already
 * so. True only for the caller whose mkdir created it.
 */
async function ensureLevel(parent: string, dir: string, cpuset: boolean, v2: boolean): Promise<boolean> {
  const running = levelsInFlight.get(dir);
  if (running) {
    await running;
    return false;
  }
  const work = (async () => {
    // cgroup v2: a level's files for a controller exist only when its parent delegates
    // that controller (cgroup.subtree_control); without it a pod's memory.current, its
    // limits and its stats are not there until runc enables them for a container.
    if (v2) await enableControllers(parent);
    let made = false;
    if (!existsSync(dir)) {
      try {
        await mkdir(dir);
        made = true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    }
    if (cpuset) await initCpuset(parent, dir);
    return made;
  })();
  levelsInFlight.set(dir, work);
  try {
    return await work;
  } finally {
    if (levelsInFlight.get(dir) === work) levelsInFlight.delete(dir);
  }
}

/**
 * cgroup v2: delegates to dir's children every controller dir has and does not
 * delegate yet, one at a time (as runc: one the kernel refuses, e.g. a threaded-only
 * one or any on a level that holds processes, leaves the others on).
 */
async function enableControllers(dir: string): Promise<void> {
  const have = (readOpt(join(dir, 'cgroup.controllers')) ?? '').trim().split(/\s+/).filter(Boolean);
  const on = new Set((readOpt(join(dir, 'cgroup.subtree_control')) ?? '').trim().split(/\s+/).filter(Boolean));
  for (const c of have) {
    if (on.has(c)) continue;
    await writeFile(join(dir, 'cgroup.subtree_control'), `+${c}`).catch(() => {});
  }
}

/** Copies the parent's cpuset.cpus/mems into dir where dir has none (idempotent, as runc does). */
async function initCpuset(parent: string, dir: string): Promise<void> {
  for (const f of ['cpuset.cpus', 'cpuset.mems']) {
    if ((await readCpusetFile(dir, f)) !== '') continue;
    const v = await readCpusetFile(parent, f);
    // We initialised the parent a moment ago (the hierarchy root is never empty), so
    // an empty one was removed and made again by someone else: walk again from the root.
    if (v === '') throw Object.assign(new Error(`cpuset parent ${parent} has no ${f}`), { code: 'ENOENT' });
    await writeFile(join(dir, f), v);
  }
}

async function readCpusetFile(dir: string, f: string): Promise<string> {
  try {
    return (await readFile(join(dir, f), 'utf8')).trim();
  } catch (err) {
    // The directory is there without the file: not set up yet (only fake trees in
    // tests lack the kernel's files); a missing directory stays ENOENT.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && existsSync(dir)) return '';
    throw err;
  }
}

/**
 * The directories ensureCgroup(path) would create now. A caller notes them before
 * creating, so a crash half-way through can still be undone from the note.
 */
export function missingCgroupDirs(path: string, root = CGROUP_ROOT): string[] {
  const out: string[] = [];
  const segs = path.split('/').filter(Boolean);
  for (const h of hierarchies(root)) {
    let dir = h;
    for (const s of segs) {
      dir = join(dir, s);
      if (!existsSync(dir)) out.push(dir);
    }
  }
  return out;
}

/** Removes a container's own cgroup in every hierarchy, waiting a moment for exiting tasks; gone already is fine. */
export async function removeLeafCgroup(path: string, root = CGROUP_ROOT): Promise<void> {
  path = cgroupFsPath(path);
  await removeCgroup(hierarchies(root).map((h) => join(h, path)), { waitBusy: true });
}

/** Removes an empty shared parent cgroup (in every hierarchy); a busy one stays. */
export async function removeCgroupIfUnused(path: string, root = CGROUP_ROOT): Promise<void> {
  await removeCgroup(hierarchies(root).map((h) => join(h, path)), { waitBusy: false });
}

/**
 * Removes directories made by ensureCgroup, deepest first; a busy parent shared with
 * others stays, and so does one an ensureCgroup in this process is walking through
 * (it is about to get a child: removing it now would only make that pod recreate it).
 */
export async function removeCgroup(created: readonly string[], opts: { waitBusy?: boolean } = {}): Promise<void> {
  const waitBusy = opts.waitBusy ?? true;
  const dirs = [...new Set(created)].sort((a, b) => b.length - a.length);
  for (const dir of dirs) {
    for (let attempt = 0; ; attempt++) {
      if (inUse.has(dir)) break;
      try {
        await rmdir(dir);
        break;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') break;
        // EBUSY: tasks are still exiting. ENOTEMPTY: another pod shares this parent.
        // A busy cgroup with child cgroups is shared (another pod below it): leave it now.
        if (code === 'EBUSY' && waitBusy && attempt < 50 && !hasChildCgroups(dir)) {
          await new Promise((r) => setTimeout(r, 20));
          continue;
        }
        if (code === 'ENOTEMPTY' || code === 'EBUSY') break;
        throw err;
      }
    }
  }
}

/** Moves a process into the cgroup in every hierarchy where the cgroup exists. */
export async function addProcess(path: string, pid: number, root = CGROUP_ROOT): Promise<void> {
  for (const h of hierarchies(root)) {
    const dir = join(h, path);
    if (existsSync(dir)) await writeFile(join(dir, 'cgroup.procs'), String(pid));
  }
}

export function cgroupExists(path: string, root = CGROUP_ROOT): boolean {
  return hierarchies(root).some((h) => existsSync(join(h, path)));
}


export interface CgroupLimits {
  cpuShares?: bigint;
  cpuQuota?: bigint;
  cpuPeriod?: bigint;
  memoryLimitBytes?: bigint;
}

/** Applies pod-level limits (v1 or v2); zero means "leave unset". */
export async function applyLimits(path: string, l: CgroupLimits, root = CGROUP_ROOT): Promise<void> {
  path = cgroupFsPath(path);
  if (isCgroupV2(root)) {
    const dir = join(root, path);
    if (l.cpuShares && l.cpuShares > 0n) {
      // The conversion kubelet and runc use from shares [2, 262144] to weight [1, 10000].
      const w = 1n + ((l.cpuShares - 2n) * 9999n) / 262142n;
      await writeFile(join(dir, 'cpu.weight'), String(w < 1n ? 1n : w));
    }
    if (l.cpuQuota && l.cpuQuota > 0n) await writeFile(join(dir, 'cpu.max'), `${l.cpuQuota} ${l.cpuPeriod && l.cpuPeriod > 0n ? l.cpuPeriod : 100000n}`);
    if (l.memoryLimitBytes && l.memoryLimitBytes > 0n) await writeFile(join(dir, 'memory.max'), String(l.memoryLimitBytes));
    return;
  }
  const cpu = join(root, 'cpu', path);
  if (l.cpuShares && l.cpuShares > 0n) await writeFile(join(cpu, 'cpu.shares'), String(l.cpuShares));
  if (l.cpuPeriod && l.cpuPeriod > 0n) await writeFile(join(cpu, 'cpu.cfs_period_us'), String(l.cpuPeriod));
  if (l.cpuQuota && l.cpuQuota > 0n) await writeFile(join(cpu, 'cpu.cfs_quota_us'), String(l.cpuQuota));
  if (l.memoryLimitBytes && l.memoryLimitBytes > 0n) await writeFile(join(root, 'memory', path, 'memory.limit_in_bytes'), String(l.memoryLimitBytes));
}

/** A cgroup file's text, or undefined when it does not exist (a controller or level absent). */
export function readOpt(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** A cgroup file's single number, or undefined (absent, empty, "max"). */
export function num(s: string | undefined): bigint | undefined {
  const t = s?.trim();
  if (!t || !/^\d+$/.test(t)) return undefined;
  return BigInt(t);
}

export function parseKeyed(s: string | undefined): Record<string, bigint> {
  const out: Record<string, bigint> = {};
  for (const line of (s ?? '').split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v && /^\d+$/.test(v)) out[k] = BigInt(v);
  }
  return out;
}

function hasChildCgroups(dir: string): boolean {
  try {
    return readdirSync(dir, { withFileTypes: true }).some((e) => e.isDirectory());
  } catch {
    return false;
  }
}
