import type { PodSandboxConfig } from '../gen/runtime/v1/api.js';

// The parts of the OCI runtime spec (config.json, v1.0.2) that Cricket writes.

export interface OciMount {
  destination: string;
  type?: string;
  source?: string;
  options?: string[];
}

export interface OciCapabilities {
  bounding: string[];
  effective: string[];
  permitted: string[];
  inheritable: string[];
  ambient: string[];
}

export interface OciSeccompArg {
  index: number;
  value: number;
  valueTwo?: number;
  op: string;
}

export interface OciSeccompRule {
  names: string[];
  action: string;
  errnoRet?: number;
  args?: OciSeccompArg[];
}

export interface OciSeccomp {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures?: string[];
  flags?: string[];
  syscalls?: OciSeccompRule[];
}

export interface OciDevice {
  path: string;
  type: string;
  major: number;
  minor: number;
  fileMode?: number;
  uid?: number;
  gid?: number;
}

export interface OciDeviceCgroup {
  allow: boolean;
  type?: string;
  major?: number;
  minor?: number;
  access?: string;
}

export interface OciResources {
  devices?: OciDeviceCgroup[];
  memory?: { limit?: number; swap?: number; reservation?: number };
  cpu?: { shares?: number; quota?: number; period?: number; cpus?: string; mems?: string };
  pids?: { limit: number };
  hugepageLimits?: { pageSize: string; limit: number }[];
  unified?: Record<string, string>;
}

export interface OciProcess {
  terminal: boolean;
  user: { uid: number; gid: number; additionalGids?: number[]; umask?: number };
  args: string[];
  env: string[];
  cwd: string;
  capabilities: OciCapabilities;
  rlimits?: { type: string; hard: number; soft: number }[];
  noNewPrivileges: boolean;
  oomScoreAdj?: number;
  apparmorProfile?: string;
}

export interface OciIdMapping {
  containerID: number;
  hostID: number;
  size: number;
}

export interface OciSpec {
  ociVersion: string;
  process: OciProcess;
  root: { path: string; readonly: boolean };
  hostname?: string;
  mounts: OciMount[];
  annotations?: Record<string, string>;
  linux: {
    resources: OciResources;
    cgroupsPath: string;
    namespaces: { type: string; path?: string }[];
    /** With a user namespace: runc 1.1.5 wants the mappings even when it joins one by path. */
    uidMappings?: OciIdMapping[];
    gidMappings?: OciIdMapping[];
    devices: OciDevice[];
    seccomp?: OciSeccomp;
    maskedPaths: string[];
    readonlyPaths: string[];
    rootfsPropagation?: string;
  };
}

/** The OCI image config's `config` object, as far as a container's spec uses it. */
export interface OciImageRunConfig {
  User?: string;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  WorkingDir?: string;
  StopSignal?: string;
  ExposedPorts?: Record<string, unknown>;
  Volumes?: Record<string, unknown>;
  Labels?: Record<string, string>;
}

/**
 * What a container's spec takes from its pod: the namespaces to join and the files
 * every container of the pod shares. The pods area's SandboxView is one of these.
 */
export interface PodSpecInput {
  readonly config: Readonly<PodSandboxConfig>;
  readonly hostname: string;
  /** Pinned namespace files; undefined when the pod uses the node's namespace. */
  readonly netnsPath: string | undefined;
  readonly ipcnsPath: string | undefined;
  readonly utsnsPath: string | undefined;
  /** The pod's PID namespace when it is shared (POD mode). */
  readonly pidnsPath: string | undefined;
  /** hostUsers: false: the pod's pinned user namespace (joined by every container) and its mappings. */
  readonly userns?: {
    readonly path: string;
    readonly uidMappings: readonly { containerId: number; hostId: number; length: number }[];
    readonly gidMappings: readonly { containerId: number; hostId: number; length: number }[];
  };
  readonly hostsPath: string;
  readonly resolvConfPath: string;
  /** The pod's /dev/shm, or undefined for host IPC. */
  readonly shmPath: string | undefined;
}
