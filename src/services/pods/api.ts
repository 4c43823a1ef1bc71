import type { DeepPartial, PodSandboxConfig, PodSandboxStatus } from '../../gen/runtime/v1/api.js';
import type { Area } from '../areas.js';
import type { ContainersArea } from '../containers/api.js';

export interface PodUserns {
  readonly path: string;
  readonly uidMappings: readonly { containerId: number; hostId: number; length: number }[];
  readonly gidMappings: readonly { containerId: number; hostId: number; length: number }[];
}

/** What the containers area needs to put a container into a pod. */
export interface SandboxView {
  readonly id: string;
  readonly state: 'ready' | 'notready';
  readonly config: Readonly<PodSandboxConfig>;
  readonly runtimeHandler: string;
  /** Pinned namespace files; undefined when the pod uses the node's namespace. */
  readonly netnsPath: string | undefined;
  readonly ipcnsPath: string | undefined;
  readonly utsnsPath: string | undefined;
  /** The pod's PID namespace when namespace_options.pid is POD (shared, catatonit init). */
  readonly pidnsPath: string | undefined;
  /** hostUsers: false: the pod's pinned user namespace, which every container joins, and its mappings. */
  readonly userns?: PodUserns;
  readonly hostname: string;
  readonly hostsPath: string;
  readonly resolvConfPath: string;
  /** The pod's /dev/shm (a sized tmpfs), or undefined for host IPC. */
  readonly shmPath: string | undefined;
  /** Absolute cgroupfs path of the pod's cgroup parent, relative to a controller root (e.g. /kubepods/pod123). */
  readonly cgroupParent: string;
  readonly logDirectory: string;
  readonly ips: readonly string[];
  /** The pod's gVisor sandbox that its containers join (runsc's id for it); undefined for other handlers. */
  readonly gvisorSandboxId: string | undefined;
}

/** Issue 4: sandboxes, namespaces, CNI, pod RPCs. */
export interface PodsArea extends Area {
  /** A sandbox by full id or unambiguous prefix. */
  get(id: string): SandboxView | undefined;
  /** The CRI status of a pod (exact id) as PodSandboxStatus reports it: what container events carry for kubelet's evented PLEG. */
  status(id: string): DeepPartial<PodSandboxStatus> | undefined;
  attachContainers(containers: ContainersArea): void;
  /** A container of the pod exited: is the pod's gVisor sandbox still there? (NOTREADY if not.) */
  checkSandbox(id: string): Promise<void>;
}
