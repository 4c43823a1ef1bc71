import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { addProcess, CGROUP_ROOT, containerCgroupsPath, ensureCgroup, missingCgroupDirs, removeCgroup, type CgroupDriver } from './cgroups.js';
import { moveToScope, startSlice, stopUnit } from './systemd-units.js';

/**
 * A pod's cgroup for either driver, as one list of what was made so that rollback,
 * teardown and crash recovery undo exactly that: cgroupfs directories (every
 * hierarchy) or, with the systemd driver, units written "systemd:<unit>" (the pod's
 * slice, the pod init's scope). What existed before (kubelet's own pod slice or QoS
 * directories) is not in the list and stays.
 */
const UNIT = 'systemd:';

const sliceOf = (path: string) => path.split('/').filter(Boolean).pop() ?? '-.slice';

/** What ensurePodCgroup would make now: noted before making it, for crash recovery. */
export function missingPodCgroups(path: string, driver: CgroupDriver, root = CGROUP_ROOT): string[] {
  if (driver === 'systemd') return existsSync(join(root, path)) ? [] : [`${UNIT}${sliceOf(path)}`];
  return missingCgroupDirs(path, root);
}

/** Makes the pod cgroup (path is its cgroupfs path; with systemd, a slice's). */
export async function ensurePodCgroup(path: string, driver: CgroupDriver, signal?: AbortSignal): Promise<string[]> {
  if (driver === 'systemd') {
    if (existsSync(join(CGROUP_ROOT, path))) return [];
    const slice = sliceOf(path);
    await startSlice(slice, signal);
    return [`${UNIT}${slice}`];
  }
  return ensureCgroup(path);
}

/**
 * Places the pod init (catatonit) in a leaf of its own under the pod cgroup, named by
 * the pod id as containerd places its sandbox container: cgroup v2 lets a cgroup with
 * processes delegate no controllers to children, so the pod cgroup itself must stay
 * empty for its containers' cgroups to get cpu and memory. cgroupfs: the directory
 * <pod>/<id>; systemd: the scope cricket-<id>.scope in the pod's slice.
 */
export async function placePodInit(podCgroup: string, podId: string, pid: number, driver: CgroupDriver, signal?: AbortSignal): Promise<string[]> {
  if (driver === 'systemd') {
    const scope = `cricket-${podId}.scope`;
    try {
      await moveToScope(scope, sliceOf(podCgroup), pid, signal);
    } catch (err) {
      await stopUnit(scope).catch(() => {});
      throw err;
    }
    return [`${UNIT}${scope}`];
  }
  const leaf = containerCgroupsPath(podCgroup, podId, 'cgroupfs');
  const created = await ensureCgroup(leaf);
  try {
    await addProcess(leaf, pid);
  } catch (err) {
    await removeCgroup(created);
    throw err;
  }
  return created;
}

/** Undoes what ensurePodCgroup and placePodInit made: units stopped last made first, then directories deepest first. */
export async function removePodCgroups(created: readonly string[], opts: { waitBusy?: boolean } = {}): Promise<void> {
  const units = created.filter((c) => c.startsWith(UNIT)).map((c) => c.slice(UNIT.length));
  for (const u of units.reverse()) await stopUnit(u);
  await removeCgroup(created.filter((c) => !c.startsWith(UNIT)), opts);
}
