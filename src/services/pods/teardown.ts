import { rm } from 'node:fs/promises';
import type { OpContext } from '../../core/context.js';
import { wrap } from '../../core/errors.js';
import { ContainerEventType } from '../../gen/runtime/v1/api.js';
import { DEFAULT_CGROUP_PARENT, type PodsDeps } from './pods-deps.js';
import { publishPodEvent } from './pod-events.js';
import type { Sandbox } from './sandbox-store.js';

// kubelet stops each container with its grace period before StopPodSandbox, so what is
// still running here is killed at once (containerd does the same): a stop that waits
// on a shell ignoring SIGTERM would outlive the caller's deadline.
const STOP_CONTAINERS_TIMEOUT_SEC = 0;

/**
 * Stops a pod: its containers, its init, its network (CNI DEL through the cache, so
 * it works after a restart). Keeps the record and the pinned namespaces. Safe to
 * repeat: each step is a no-op the second time. Caller holds the pod's mutex.
 */
export async function stopSandbox(ctx: OpContext, deps: PodsDeps, sb: Sandbox): Promise<void> {
  // Mark first, then act: a daemon killed part-way through leaves a NOTREADY pod whose
  // remaining teardown recovery finishes (and kubelet repeats), never a READY pod whose
  // containers or network are already gone.
  const wasReady = sb.status.state === 'ready';
  if (wasReady) {
    sb.status = { ...sb.status, state: 'notready' };
    await guard('save pod record', () => deps.store.update(sb));
  }
  await deps.containers()?.stopAllInPod(ctx, sb.id, STOP_CONTAINERS_TIMEOUT_SEC);
  // A gVisor pod's sandbox goes with its containers (its kernel is what they ran on);
  // its cgroup with it, as a runc pod's init. Nothing there is not an error.
  const infra = sb.meta.sandboxInfra;
  if (infra) {
    await guard("remove the pod's gVisor sandbox", () => deps.host.removeSandboxInfra(ctx, infra));
    await guard("remove the gVisor sandbox's cgroup", () => deps.host.removeLeafCgroup(infra.cgroupsPath));
  }
  if (sb.meta.pidnsPath) {
    const pidnsPath = sb.meta.pidnsPath;
    await guard('stop pod init', () => deps.host.stopPodInit(sb.status.initPid ?? undefined, pidnsPath));
  }
  await guard('tear down pod network', () => deps.cni.tearDown(ctx, sb.id));
  deps.store.releasePorts(sb.id);
  if (sb.status.ips.length > 0 || sb.status.initPid !== null) {
    sb.status = { ...sb.status, ips: [], initPid: null };
    await guard('save pod record', () => deps.store.update(sb));
  }
  if (wasReady) publishPodEvent(deps, sb, ContainerEventType.CONTAINER_STOPPED_EVENT);
}

/** Removes a pod: its containers, then everything Run created, then the records. Caller holds the mutex. */
export async function removeSandbox(ctx: OpContext, deps: PodsDeps, sb: Sandbox): Promise<void> {
  await deps.containers()?.removeAllInPod(ctx, sb.id);
  await stopSandbox(ctx, deps, sb);
  const m = sb.meta;
  if (m.shmPath) {
    const shm = m.shmPath;
    await guard('unmount pod /dev/shm', () => deps.host.unmountShm(shm, ctx.signal));
  }
  // The user namespace last: the others belong to it (unpinning in any order is safe, but
  // this keeps the pod's root owning them until they go).
  for (const p of [m.netnsPath, m.ipcnsPath, m.utsnsPath, m.pidnsPath, m.userns?.path]) {
    if (p) await guard(`unpin namespace ${p}`, () => deps.host.unpinNamespace(p, ctx.signal));
  }
  await guard('remove pod cgroup', () => deps.host.removeCgroup(m.createdCgroups));
  if (m.cgroupParent.startsWith(`${DEFAULT_CGROUP_PARENT}/`)) await deps.host.removeCgroupIfUnused(DEFAULT_CGROUP_PARENT).catch(() => {});
  await guard('remove pod files', () => rm(m.podDir, { recursive: true, force: true }));
  await guard('delete pod record', () => deps.store.remove(sb));
  publishPodEvent(deps, sb, ContainerEventType.CONTAINER_DELETED_EVENT);
}

async function guard<T>(action: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw wrap(err, action);
  }
}
