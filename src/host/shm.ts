import { mkdir, rm } from 'node:fs/promises';
import { run } from './exec.js';
import { isMountPoint } from './netns.js';

/** Default /dev/shm size per pod, as docker, containerd and CRI-O use. */
export const DEFAULT_SHM_BYTES = 64 * 1024 * 1024;

/** A sized tmpfs for the pod's /dev/shm, shared by its containers (bind-mounted by each). */
export async function mountShm(dir: string, sizeBytes: number, signal?: AbortSignal): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await run('mount', ['-t', 'tmpfs', '-o', `nosuid,nodev,noexec,mode=1777,size=${sizeBytes}`, 'shm', dir], {
    signal,
    timeoutMs: 30_000,
  });
}

export async function unmountShm(dir: string, signal?: AbortSignal): Promise<void> {
  if (isMountPoint(dir)) {
    await run('umount', [dir], { signal, timeoutMs: 30_000, allowFailure: true });
    if (isMountPoint(dir)) await run('umount', ['-l', dir], { signal, timeoutMs: 30_000 });
  }
  await rm(dir, { recursive: true, force: true });
}
