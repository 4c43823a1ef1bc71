import { join } from 'node:path';
import { NamespaceMode, type ContainerConfig, type DeepPartial, type PodSandboxConfig } from '../../src/gen/runtime/v1/api.js';
import type { MethodName } from '../../src/gen/methods.js';
import type { ReqOf, ResOf } from '../../src/client/cri-client.js';
import type { Runtime } from './runtime.js';

// The same requests for both runtimes: a pod like kubelet's for a one-container
// Deployment (pod network, own IPC, per-container PID namespace, a cgroup parent, a
// log directory) running busybox's shell, which exits at once on SIGTERM.

export interface PodHandle {
  podId: string;
  containerId: string;
  config: DeepPartial<PodSandboxConfig>;
}

export interface StartTimes {
  run: number;
  create: number;
  start: number;
  total: number;
}

export function podConfig(rt: Runtime, tag: string, i: number): DeepPartial<PodSandboxConfig> {
  const name = `${tag}-${i}`;
  return {
    metadata: { name, namespace: 'bench', uid: `uid-${name}`, attempt: 0 },
    hostname: name,
    logDirectory: join(rt.logRoot, `bench_${name}_uid-${name}`),
    labels: { 'io.kubernetes.pod.name': name, 'io.kubernetes.pod.namespace': 'bench', 'io.kubernetes.pod.uid': `uid-${name}` },
    linux: {
      cgroupParent: `${rt.cgroupRoot}/pod-${name}`,
      securityContext: { namespaceOptions: { network: NamespaceMode.POD, pid: NamespaceMode.CONTAINER, ipc: NamespaceMode.POD } },
    },
  };
}

export function containerConfig(image: string): DeepPartial<ContainerConfig> {
  return {
    metadata: { name: 'main', attempt: 0 },
    image: { image },
    command: ['/bin/sh', '-c', 'trap "exit 0" TERM; sleep 3600 & wait'],
    logPath: 'main/0.log',
    labels: { 'io.kubernetes.container.name': 'main' },
    linux: { resources: { cpuShares: 2, oomScoreAdj: 1000 } },
  };
}

export const ms = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e6;

/** One call, timed from the client (request encoding to response decoded). */
export async function timed<M extends MethodName>(rt: Runtime, method: M, req: ReqOf<M> | object, timeoutMs = 120_000): Promise<{ res: ResOf<M>; ms: number }> {
  const t0 = process.hrtime.bigint();
  const res = await rt.client.call(method, req as never, { timeoutMs });
  return { res, ms: ms(t0) };
}

/** RunPodSandbox + CreateContainer + StartContainer, each timed. */
export async function startPod(rt: Runtime, image: string, tag: string, i: number): Promise<{ pod: PodHandle; t: StartTimes }> {
  const config = podConfig(rt, tag, i);
  const run = await timed(rt, 'RunPodSandbox', { config });
  const podId = run.res.podSandboxId;
  try {
    const create = await timed(rt, 'CreateContainer', { podSandboxId: podId, config: containerConfig(image), sandboxConfig: config });
    const containerId = create.res.containerId;
    const start = await timed(rt, 'StartContainer', { containerId });
    return { pod: { podId, containerId, config }, t: { run: run.ms, create: create.ms, start: start.ms, total: run.ms + create.ms + start.ms } };
  } catch (err) {
    // Like kubelet after a failed container start: the pod goes.
    await rt.client.call('StopPodSandbox', { podSandboxId: podId }).catch(() => {});
    await rt.client.call('RemovePodSandbox', { podSandboxId: podId }).catch(() => {});
    throw err;
  }
}

export interface StopTimes {
  stopContainer: number;
  removeContainer: number;
  stopPod: number;
  removePod: number;
}

/** StopContainer (10 s grace, the shell exits on SIGTERM) + RemoveContainer + StopPodSandbox + RemovePodSandbox, each timed. */
export async function stopPod(rt: Runtime, pod: PodHandle): Promise<StopTimes> {
  const a = await timed(rt, 'StopContainer', { containerId: pod.containerId, timeout: 10 });
  const b = await timed(rt, 'RemoveContainer', { containerId: pod.containerId });
  const c = await timed(rt, 'StopPodSandbox', { podSandboxId: pod.podId });
  const d = await timed(rt, 'RemovePodSandbox', { podSandboxId: pod.podId });
  return { stopContainer: a.ms, removeContainer: b.ms, stopPod: c.ms, removePod: d.ms };
}

/** Starts `count` pods with `parallel` in flight at a time (a pool, as kubelet's pod workers); wall time and failures. */
export async function startMany(
  rt: Runtime,
  image: string,
  tag: string,
  count: number,
  parallel: number,
  stopping: () => boolean,
): Promise<{ pods: PodHandle[]; seconds: number; failures: string[] }> {
  const pods: PodHandle[] = [];
  const failures: string[] = [];
  let next = 0;
  const t0 = process.hrtime.bigint();
  const worker = async () => {
    while (next < count && !stopping()) {
      const i = next++;
      try {
        pods.push((await startPod(rt, image, tag, i)).pod);
      } catch (err) {
        failures.push(String(err instanceof Error ? err.message : err).slice(0, 300));
      }
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return { pods, seconds: ms(t0) / 1000, failures };
}
