// The subset of a Kubernetes Pod the reconciler runs, as manifest.ts parses it (the
// parser and its yaml library load on the first play; these types cost nothing).

export interface EnvVar {
  name: string;
  value?: string;
  /** metadata.name | metadata.namespace | metadata.uid | status.podIP | spec.nodeName */
  fieldPath?: string;
}

/** A liveness, readiness or startup probe: one action and kubelet's timings. */
export interface ProbeSpec {
  exec?: { command: string[] };
  httpGet?: { path: string; port: number; host: string; scheme: 'HTTP' | 'HTTPS' };
  tcpSocket?: { port: number; host: string };
  initialDelaySeconds: number;
  periodSeconds: number;
  timeoutSeconds: number;
  successThreshold: number;
  failureThreshold: number;
}

/** What CRI takes of a container's resources (kubelet's conversion, see resourcesOf()). */
export interface ResourcesSpec {
  /** CPU in millicores; undefined when not given. */
  cpuRequestMilli?: number;
  cpuLimitMilli?: number;
  memoryLimitBytes?: number;
}

export interface SecuritySpec {
  runAsUser?: number;
  runAsGroup?: number;
  privileged?: boolean;
  readOnlyRootFilesystem?: boolean;
  allowPrivilegeEscalation?: boolean;
  capabilities?: { add: string[]; drop: string[] };
  seccompProfile?: { type: 'RuntimeDefault' | 'Unconfined' | 'Localhost'; localhostProfile: string };
}

/** A postStart or preStop hook: one action, as a probe's (no timings). */
export interface HookSpec {
  exec?: { command: string[] };
  httpGet?: { path: string; port: number; host: string; scheme: 'HTTP' | 'HTTPS' };
  sleepSeconds?: number;
}

export interface ContainerSpec {
  name: string;
  image: string;
  imagePullPolicy: 'Always' | 'IfNotPresent' | 'Never';
  command: string[];
  args: string[];
  env: EnvVar[];
  workingDir: string;
  ports: { containerPort: number; hostPort: number; protocol: 'TCP' | 'UDP' | 'SCTP' }[];
  volumeMounts: { name: string; mountPath: string; readOnly: boolean }[];
  livenessProbe?: ProbeSpec;
  readinessProbe?: ProbeSpec;
  startupProbe?: ProbeSpec;
  resources: ResourcesSpec;
  securityContext: SecuritySpec;
  lifecycle: { postStart?: HookSpec; preStop?: HookSpec };
}

export interface VolumeSpec {
  name: string;
  /** medium Memory: a tmpfs of sizeBytes (default: half the node's memory, as tmpfs's own default). */
  emptyDir?: { medium: string; sizeBytes?: number };
  hostPath?: { path: string };
  /** A configMap or secret volume: its files (relative path, base64 bytes), taken from the ConfigMap/Secret in the same file. */
  files?: { path: string; dataB64: string }[];
}

/** A ConfigMap's or Secret's data, key → base64 bytes. */

export interface PodManifest {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  hostname: string;
  hostNetwork: boolean;
  restartPolicy: 'Always' | 'OnFailure' | 'Never';
  terminationGracePeriodSeconds: number;
  runtimeClassName: string;
  dnsConfig?: { servers: string[]; searches: string[]; options: string[] };
  /** Pod-level runAsUser/runAsGroup/seccompProfile: each container's default. */
  securityContext: Pick<SecuritySpec, 'runAsUser' | 'runAsGroup' | 'seccompProfile'>;
  initContainers: ContainerSpec[];
  containers: ContainerSpec[];
  volumes: VolumeSpec[];
}

export interface ParsedManifests {
  pods: PodManifest[];
  warnings: string[];
}
