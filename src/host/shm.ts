import { mkdir, rm } from 'node:fs/promises';
import { sysHelper } from './sys-helper.js';

/** Default /dev/shm size per pod, as docker, containerd and CRI-O use. */
export const DEFAULT_SHM_BYTES = 64 * 1024 * 1024;

/** A sized tmpfs for the pod's /dev/shm, shared by its containers (bind-mounted by each). */
export async function mountShm(dir: string, sizeBytes: number, signal?: AbortSignal, owner?: { uid: number; gid: number }): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // owner: the pod's root when it has its own user namespace (the host's root is nobody there).
  const own = owner ? `,uid=${owner.uid},gid=${owner.gid}` : '';
  await sysHelper.request('mount', { source: 'shm', target: dir, fstype: 'tmpfs', flags: ['nosuid', 'nodev', 'noexec'], data: `mode=1777,size=${sizeBytes}${own}` }, { signal });
}

export async function unmountShm(dir: string, signal?: AbortSignal): Promise<void> {
  await sysHelper.request('umount', { target: dir }, { signal });
  await rm(dir, { recursive: true, force: true });
}
