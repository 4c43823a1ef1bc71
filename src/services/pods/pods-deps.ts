import type { Logger } from 'pino';
import type { Config } from '../../config/schema.js';
import type { KeyedMutex } from '../../core/keyed-mutex.js';
import type { ContainersArea } from '../containers/api.js';
import type { EventBus } from '../events/event-bus.js';
import type { PodHost, PodNetwork } from './pod-host.js';
import type { SandboxStore } from './sandbox-store.js';

/** What the pod RPCs share, built once by createPods(). */
export interface PodsDeps {
  readonly config: Readonly<Config>;
  readonly log: Logger;
  readonly store: SandboxStore;
  readonly events: EventBus;
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

/** The shared parent of pods the CRI gives no cgroup parent (cgroupfs driver; see host/cgroups.ts defaultPodCgroup). */
export const DEFAULT_CGROUP_PARENT = '/cricket';

/** In a pod's run dir: the cgroup directories RunPodSandbox created (JSON list). */
export const CREATED_CGROUPS_FILE = 'cgroups.json';
