import type { Logger } from 'pino';
import type { Config } from '../../config/schema.js';
import type { KeyedMutex } from '../../core/keyed-mutex.js';
import { ContainerEventType } from '../../gen/runtime/v1/api.js';
import type { ContainersArea } from '../containers/area.js';
import type { PodHost, PodNetwork } from './pod-host.js';
import { statusOf } from './pod-sandbox-status.js';
import type { Sandbox } from './sandbox-store.js';
import type { SandboxStore } from './sandbox-store.js';

/** What the pod RPCs share, built once by createPods(). */
export interface PodsDeps {
  readonly config: Readonly<Config>;
  readonly log: Logger;
  readonly store: SandboxStore;
  readonly cni: PodNetwork;
  /** Cgroups, namespace pins, shm, the pod init: the real host or a fake in tests. */
  readonly host: PodHost;
  /** One runtime operation per pod at a time. */
  readonly mutex: KeyedMutex;
  /** Set by attachContainers(); undefined only during start-up. */
  containers(): ContainersArea | undefined;
  /** <run_root>/pods: per-pod files (hosts, resolv.conf, shm) and pinned namespaces. */
  readonly podsRunDir: string;
}

/** The default pod cgroup parent when the CRI gives none. */
export const DEFAULT_CGROUP_PARENT = '/cricket';

/** In a pod's run dir: the cgroup directories RunPodSandbox created (JSON list). */
export const CREATED_CGROUPS_FILE = 'cgroups.json';

/**
 * Sandbox lifecycle events on GetContainerEvents (kubelet's evented PLEG): the
 * container_id is the sandbox id and pod_sandbox_status is filled.
 */
export function publishPodEvent(deps: PodsDeps, sb: Sandbox, type: ContainerEventType): void {
  deps.containers()?.publishEvent({
    containerId: sb.id,
    containerEventType: type,
    createdAt: BigInt(Date.now()) * 1_000_000n,
    podSandboxStatus: statusOf(sb),
    containersStatuses: [],
  });
}
