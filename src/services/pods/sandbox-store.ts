import { z } from 'zod';
import { alreadyExists, failedPrecondition } from '../../core/errors.js';
import { LinuxContainerResources, PodSandboxConfig } from '../../gen/runtime/v1/api.js';
import { fromBase64, toBase64 } from '../../store/proto-base64.js';
import { RecordStore, type RecordKind } from '../../store/record-store.js';
import { portsConflict, type CniPortMapping } from '../../cni/port-mappings.js';
import type { SandboxView } from './api.js';

/*
 * A sandbox's life:
 *
 *   (RunPodSandbox) ──► READY ──StopPodSandbox──► NOTREADY ──RemovePodSandbox──► (gone)
 *                          └──────────────── RemovePodSandbox (stops first) ──────┘
 *
 * Immutable facts (config, paths, what was created) are the meta record, the mutable
 * part (state, IPs, init pid) the status record (store/record-store.ts), both under
 * <root>/pods; they survive a restart. The namespaces they point at live under the run
 * root and do not survive a reboot (recovery then marks the pod NOTREADY). A meta whose
 * status is missing (a crash between the two writes) loads as NOTREADY, so kubelet's
 * Stop/Remove can finish the job.
 */
const MetaFields = z.object({
  id: z.string(),
  nameKey: z.string(),
  /** The handler the pod runs on (an empty request resolved to the default). */
  runtimeHandler: z.string(),
  /** The handler as the request named it ('' stays ''), which PodSandboxStatus and ListPodSandbox report; absent in older records. */
  runtimeHandlerAsked: z.string().optional(),
  createdAt: z.string(),
  podDir: z.string(),
  netnsPath: z.string().nullable(),
  ipcnsPath: z.string().nullable(),
  utsnsPath: z.string().nullable(),
  pidnsPath: z.string().nullable(),
  /** hostUsers: false: the pod's pinned user namespace and its mappings; absent in older records. */
  userns: z
    .object({
      path: z.string(),
      uidMappings: z.array(z.object({ containerId: z.number(), hostId: z.number(), length: z.number() })),
      gidMappings: z.array(z.object({ containerId: z.number(), hostId: z.number(), length: z.number() })),
    })
    .nullable()
    .optional(),
  hostname: z.string(),
  hostsPath: z.string(),
  resolvConfPath: z.string(),
  shmPath: z.string().nullable(),
  cgroupParent: z.string(),
  createdCgroups: z.array(z.string()),
  logDirectory: z.string(),
  /**
   * A gVisor pod's sandbox (runtime_type "sandbox"): runsc, its root and flags, and the
   * infra container's bundle (runtime/pod-sandbox.ts); absent for other handlers, and in
   * records of gVisor pods made when each container had a sandbox of its own.
   */
  sandboxInfra: z
    .object({ id: z.string(), runtimePath: z.string(), runtimeRoot: z.string(), runtimeArgs: z.array(z.string()), bundleDir: z.string(), cgroupsPath: z.string() })
    .nullable()
    .optional(),
  portMappings: z.array(
    z.object({ hostPort: z.number(), containerPort: z.number(), protocol: z.enum(['tcp', 'udp', 'sctp']), hostIP: z.string().optional() }),
  ),
});

const MetaV2 = MetaFields.extend({
  v: z.literal(2),
  /** The CRI PodSandboxConfig as protobuf bytes (base64), as containers keep theirs. */
  config: z.string(),
});
export type SandboxMeta = z.output<typeof MetaV2>;

/** v1 kept the config as proto JSON. Read and converted, never written: a daemon upgraded in place loads its pods. */
const MetaV1 = MetaFields.extend({ v: z.literal(1), config: z.unknown() }).transform(
  (m): SandboxMeta => ({ ...m, v: 2, config: toBase64(PodSandboxConfig, PodSandboxConfig.fromJSON(m.config)) }),
);

export const MetaSchema = z.union([MetaV2, MetaV1]);

const StatusFields = z.object({
  state: z.enum(['ready', 'notready']),
  ips: z.array(z.string()),
  network: z.string().nullable(),
  initPid: z.number().nullable(),
});

const StatusV2 = StatusFields.extend({
  v: z.literal(2),
  /** The last UpdatePodSandboxResources: LinuxContainerResources as protobuf bytes (base64). */
  resources: z.string().optional(),
  overhead: z.string().optional(),
});
export type SandboxStatus = z.output<typeof StatusV2>;

/** v1 kept resources and overhead as proto JSON; converted on read like MetaV1. */
const resourcesFromV1 = (json: unknown) => (json === undefined || json === null ? undefined : toBase64(LinuxContainerResources, LinuxContainerResources.fromJSON(json)));
const StatusV1 = StatusFields.extend({ v: z.literal(1), resources: z.unknown().optional(), overhead: z.unknown().optional() }).transform(
  (s): SandboxStatus => ({ ...s, v: 2, resources: resourcesFromV1(s.resources), overhead: resourcesFromV1(s.overhead) }),
);

export const StatusSchema = z.union([StatusV2, StatusV1]);

export class Sandbox {
  readonly meta: SandboxMeta;
  readonly config: PodSandboxConfig;
  readonly createdAtNs: bigint;
  status: SandboxStatus;

  constructor(meta: SandboxMeta, status: SandboxStatus) {
    this.meta = meta;
    this.config = fromBase64(PodSandboxConfig, meta.config);
    this.createdAtNs = BigInt(meta.createdAt);
    this.status = status;
  }

  get id(): string {
    return this.meta.id;
  }

  /** The pod's resources and overhead from the last UpdatePodSandboxResources, if any. */
  get resources(): LinuxContainerResources | undefined {
    return this.status.resources === undefined ? undefined : fromBase64(LinuxContainerResources, this.status.resources);
  }

  get overhead(): LinuxContainerResources | undefined {
    return this.status.overhead === undefined ? undefined : fromBase64(LinuxContainerResources, this.status.overhead);
  }

  /** What PodSandboxStatus and ListPodSandbox report: the handler as asked, as containerd does. */
  get reportedHandler(): string {
    return this.meta.runtimeHandlerAsked ?? this.meta.runtimeHandler;
  }

  view(): SandboxView {
    const m = this.meta;
    return {
      id: m.id,
      state: this.status.state,
      config: this.config,
      runtimeHandler: m.runtimeHandler,
      netnsPath: m.netnsPath ?? undefined,
      ipcnsPath: m.ipcnsPath ?? undefined,
      utsnsPath: m.utsnsPath ?? undefined,
      pidnsPath: m.pidnsPath ?? undefined,
      userns: m.userns ?? undefined,
      hostname: m.hostname,
      hostsPath: m.hostsPath,
      resolvConfPath: m.resolvConfPath,
      shmPath: m.shmPath ?? undefined,
      cgroupParent: m.cgroupParent,
      logDirectory: m.logDirectory,
      ips: [...this.status.ips],
      gvisorSandboxId: m.sandboxInfra?.id,
    };
  }
}

const sandboxKind: RecordKind<SandboxMeta, SandboxStatus, Sandbox> = {
  noun: 'pod sandbox',
  metaSchema: MetaSchema,
  statusSchema: StatusSchema,
  build: (meta, status) => new Sandbox(meta, status),
  nameKey: (meta) => meta.nameKey,
  nameTaken: (nameKey, holder) => alreadyExists(`pod sandbox name "${nameKey}" is already reserved for sandbox ${holder}`, { details: { holder } }),
  statusWhenMissing: () => ({ v: 2, state: 'notready', ips: [], network: null, initPid: null }),
};

/**
 * Sandboxes in memory plus their records on disk (store/record-store.ts), and the two
 * reservations that must be taken before any side effect: the pod name and its host
 * ports. Reservation is synchronous (no await between check and mark).
 */
export class SandboxStore extends RecordStore<SandboxMeta, SandboxStatus, Sandbox> {
  readonly #ports = new Map<string, readonly CniPortMapping[]>();

  constructor(root: string) {
    super(root, sandboxKind);
  }

  /** Host ports are exclusive among pods whose network is up. */
  reservePorts(id: string, ports: readonly CniPortMapping[]): void {
    for (const p of ports) {
      for (const [other, taken] of this.#ports) {
        if (other === id) continue;
        const clash = taken.find((t) => portsConflict(t, p));
        if (clash) {
          throw failedPrecondition(`host port ${p.hostPort}/${p.protocol} is already mapped by pod sandbox ${other}`);
        }
      }
    }
    if (ports.length > 0) this.#ports.set(id, ports);
  }

  releasePorts(id: string): void {
    this.#ports.delete(id);
  }

  /** Also frees the pod's host ports. */
  override async remove(sb: Sandbox): Promise<void> {
    await super.remove(sb);
    this.releasePorts(sb.id);
  }

  /** Also restores the host ports of READY pods. */
  override async load() {
    const res = await super.load();
    for (const sb of res.loaded) if (sb.status.state === 'ready' && sb.meta.portMappings.length > 0) this.#ports.set(sb.id, sb.meta.portMappings);
    return res;
  }
}
