import { chmodSync, closeSync, existsSync, openSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { mountPointsUnder, pinNamespaces, unpinNamespace } from './netns.js';
import { sysHelper } from './sys-helper.js';

/**
 * User namespaces for pods (hostUsers: false): files are shown to a pod's root through
 * idmapped mounts (open_tree + mount_setattr(MOUNT_ATTR_IDMAP) + move_mount, in the sys
 * helper), made here before runc runs: runc 1.1.5 does not make them, but bind-mounts an
 * already idmapped mount as it is. Nothing is chown'd or copied.
 */

/** An idmapped view of source at target: ids as the user namespace pinned at usernsPath maps them (on-disk 0 shows as the pod root's host uid). */
export async function idmapMount(source: string, target: string, usernsPath: string, signal?: AbortSignal): Promise<void> {
  const st = await stat(source);
  await mkdir(dirname(target), { recursive: true, mode: 0o711 });
  // move_mount needs a target of the same kind: a file is bound onto a file.
  if (st.isDirectory()) await mkdir(target, { recursive: true, mode: 0o711 });
  else closeSync(openSync(target, 'a', 0o444));
  await sysHelper.request('idmap', { source, target, userns: usernsPath }, { signal });
}

export interface UsernsSupport {
  ok: boolean;
  /** Why not, in words a person can act on; '' when ok. */
  reason: string;
}

const probes = new Map<string, Promise<UsernsSupport>>();

/**
 * Can this node give pods a user namespace? Asked once per root (the first caller runs
 * it; later ones share the answer): a user namespace is made, a directory on the root's
 * filesystem (where the layers are) idmapped through it, and an overlay mounted over
 * that, as CreateContainer will; a file owned by 0 on disk must show as the mapped uid.
 */
export function probeUserNamespaces(root: string, runRoot: string): Promise<UsernsSupport> {
  const key = `${root}\0${runRoot}`;
  let p = probes.get(key);
  if (!p) {
    p = runProbe(root, runRoot);
    probes.set(key, p);
  }
  return p;
}

const PROBE_HOST_ID = 3_000_000_000;
const PROBE_PREFIX = '.userns-probe-';

async function runProbe(root: string, runRoot: string): Promise<UsernsSupport> {
  try {
    const max = Number(readFileSync('/proc/sys/user/max_user_namespaces', 'utf8').trim());
    if (!(max > 0)) return { ok: false, reason: 'user namespaces are disabled on this node (/proc/sys/user/max_user_namespaces is 0)' };
  } catch {
    return { ok: false, reason: 'this kernel has no user namespaces (/proc/sys/user/max_user_namespaces is missing)' };
  }
  // runc mounts a container's rootfs, pod files and idmapped views (all under the run
  // root) from inside the user namespace, as an unprivileged host uid: every directory
  // on the way must let others through.
  for (let d = runRoot; ; d = dirname(d)) {
    try {
      const mode = statSync(d).mode;
      if ((mode & 0o001) === 0) {
        return { ok: false, reason: `${d} (mode ${(mode & 0o777).toString(8).padStart(4, '0')}) does not let others through, but the root of a pod with its own user namespace is an unprivileged host uid that must reach the run root ${runRoot}: chmod o+x ${d}` };
      }
    } catch {
      // not made yet: the daemon makes it (0755)
    }
    if (d === dirname(d)) break;
  }
  let dir: string | undefined;
  let runDir: string | undefined;
  try {
    // What a daemon killed during its probe left (mounts included) goes first.
    for (const parent of [root, runRoot]) {
      for (const name of existsSync(parent) ? readdirSync(parent) : []) {
        if (!name.startsWith(PROBE_PREFIX)) continue;
        const left = join(parent, name);
        for (const m of mountPointsUnder(left)) await sysHelper.request('umount', { target: m });
        await rm(left, { recursive: true, force: true });
      }
    }
    await mkdir(root, { recursive: true });
    await mkdir(runRoot, { recursive: true });
    dir = await mkdtemp(join(root, PROBE_PREFIX));
    runDir = await mkdtemp(join(runRoot, PROBE_PREFIX));
    chmodSync(dir, 0o711);
    const user = join(runDir, 'user');
    const mapping = [{ containerId: 0, hostId: PROBE_HOST_ID, length: 1 }];
    await pinNamespaces({ user: { path: user, uidMappings: mapping, gidMappings: mapping }, timeoutMs: 10_000 });
    for (const d of ['lower', 'upper', 'work', 'merged']) await mkdir(join(dir, d));
    await writeFile(join(dir, 'lower', 'f'), '');
    await idmapMount(join(dir, 'lower'), join(dir, 'idmapped'), user);
    const onDisk = await stat(join(dir, 'idmapped', 'f'));
    if (onDisk.uid !== PROBE_HOST_ID) return { ok: false, reason: `an idmapped mount on ${root} shows uid ${onDisk.uid}, not the mapped ${PROBE_HOST_ID}` };
    await sysHelper.request('mount', {
      source: 'overlay',
      target: join(dir, 'merged'),
      fstype: 'overlay',
      data: `lowerdir=${join(dir, 'idmapped')},upperdir=${join(dir, 'upper')},workdir=${join(dir, 'work')}`,
    });
    const merged = await stat(join(dir, 'merged', 'f'));
    if (merged.uid !== PROBE_HOST_ID) return { ok: false, reason: `overlay over an idmapped layer on ${root} shows uid ${merged.uid}, not the mapped ${PROBE_HOST_ID}` };
    return { ok: true, reason: '' };
  } catch (err) {
    return { ok: false, reason: `the kernel or the filesystem of ${root} cannot idmap (${err instanceof Error ? err.message : String(err)}): idmapped mounts and overlayfs over them need Linux 5.19 or later` };
  } finally {
    if (dir) {
      for (const t of ['merged', 'idmapped']) await sysHelper.request('umount', { target: join(dir, t) }).catch(() => {});
      await rm(dir, { recursive: true, force: true }).catch(() => {});
    }
    if (runDir) {
      await unpinNamespace(join(runDir, 'user')).catch(() => {});
      await rm(runDir, { recursive: true, force: true }).catch(() => {});
    }
  }
}
