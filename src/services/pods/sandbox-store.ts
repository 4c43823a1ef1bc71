import { join } from 'node:path';
import { z } from 'zod';
import { alreadyExists, failedPrecondition } from '../../core/errors.js';
import { resolvePrefix } from '../../core/ids.js';
import { PodSandboxConfig } from '../../gen/runtime/v1/api.js';
import { JsonRecordDir } from '../../store/json-record.js';
import { portsConflict, type CniPortMapping } from '../../cni/port-mappings.js';
import type { SandboxView } from './api.js';

/*
 * A sandbox's life:
 *
 *   (RunPodSandbox) ──► READY ──StopPodSandbox──► NOTREADY ──RemovePodSandbox──► (gone)
 *                          └──────────────── RemovePodSandbox (stops first) ──────┘
 *
 * Immutable facts (config, paths, what was created) live in meta/<id>.json, written
 * once; the mutable part (state, IPs, init pid) in status/<id>.json. Both are under
 * <root>/pods and survive a restart; the namespaces they point at live under the run
 * root and do not survive a reboot (recovery then marks the pod NOTREADY).
 */
export const MetaSchema = z.object({
  v: z.literal(1),
  id: z.string(),
  nameKey: z.string(),
  config: z.unknown(),
  runtimeHandler: z.string(),
  createdAt: z.string(),
  podDir: z.string(),
  netnsPath: z.string().nullable(),
  ipcnsPath: z.string().nullable(),
  utsnsPath: z.string().nullable(),
  pidnsPath: z.string().nullable(),
  hostname: z.string(),
  hostsPath: z.string(),
  resolvConfPath: z.string(),
  shmPath: z.string().nullable(),
  cgroupParent: z.string(),
  createdCgroups: z.array(z.string()),
  logDirectory: z.string(),
  portMappings: z.array(
    z.object({ hostPort: z.number(), containerPort: z.number(), protocol: z.enum(['tcp', 'udp', 'sctp']), hostIP: z.string().optional() }),
  ),
});
export type SandboxMeta = z.output<typeof MetaSchema>;

export const StatusSchema = z.object({
  v: z.literal(1),
  state: z.enum(['ready', 'notready']),
  ips: z.array(z.string()),
  network: z.string().nullable(),
  initPid: z.number().nullable(),
  /** The last UpdatePodSandboxResources (LinuxContainerResources as proto JSON). */
  resources: z.unknown().optional(),
  overhead: z.unknown().optional(),
});
export type SandboxStatus = z.output<typeof StatusSchema>;

export class Sandbox {
  readonly meta: SandboxMeta;
  readonly config: PodSandboxConfig;
  readonly createdAtNs: bigint;
  status: SandboxStatus;

  constructor(meta: SandboxMeta, status: SandboxStatus) {
    this.meta = meta;
    this.config = PodSandboxConfig.fromJSON(meta.config);
    this.createdAtNs = BigInt(meta.createdAt);
    this.status = status;
  }

  get id(): string {
    return this.meta.id;
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
      hostname: m.hostname,
      hostsPath: m.hostsPath,
      resolvConfPath: m.resolvConfPath,
      shmPath: m.shmPath ?? undefined,
      cgroupParent: m.cgroupParent,
      logDirectory: m.logDirectory,
      ips: [...this.status.ips],
    };
  }
}

/**
 * Sandboxes in memory plus their records on disk, and the two reservations that must
 * be taken before any side effect: the pod name and its host ports. Reservation is
 * synchronous (no await between check and mark).
 */
export class SandboxStore {
  readonly #meta: JsonRecordDir<typeof MetaSchema>;
  readonly #status: JsonRecordDir<typeof StatusSchema>;
  readonly #byId = new Map<string, Sandbox>();
  readonly #names = new Map<string, string>();
  readonly #ports = new Map<string, readonly CniPortMapping[]>();
  readonly #parked = new Map<string, string>();

  constructor(root: string) {
    this.#meta = new JsonRecordDir(join(root, 'meta'), MetaSchema);
    this.#status = new JsonRecordDir(join(root, 'status'), StatusSchema);
  }

  reserveName(nameKey: string, id: string): void {
    const holder = this.#names.get(nameKey);
    if (holder !== undefined && holder !== id) {
      throw alreadyExists(`pod sandbox name "${nameKey}" is already reserved for sandbox ${holder}`, { details: { holder } });
    }
    this.#names.set(nameKey, id);
  }

  releaseName(nameKey: string, id: string): void {
    if (this.#names.get(nameKey) === id) this.#names.delete(nameKey);
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

  /**
   * A pod finished after its caller's deadline passed. kubelet will retry RunPodSandbox
   * with the same name; the retry gets this pod instead of "name reserved" (as CRI-O
   * does), so a slow creation is not thrown away and redone forever.
   */
  park(nameKey: string, id: string): void {
    this.#parked.set(nameKey, id);
  }

  /** The parked pod for this name, if any, now handed over (unparked). */
  takeParked(nameKey: string): Sandbox | undefined {
    const id = this.#parked.get(nameKey);
    if (id === undefined) return undefined;
    this.#parked.delete(nameKey);
    return this.#byId.get(id);
  }

  add(sb: Sandbox): void {
    this.#byId.set(sb.id, sb);
  }

  /** A sandbox by full id or unambiguous prefix (ambiguous: InvalidArgument). */
  resolve(idOrPrefix: string): Sandbox | undefined {
    const id = resolvePrefix(idOrPrefix, this.#byId.keys(), 'pod sandbox');
    return id === undefined ? undefined : this.#byId.get(id);
  }

  list(): Sandbox[] {
    return [...this.#byId.values()];
  }

  async persistNew(sb: Sandbox): Promise<void> {
    await this.#meta.put(sb.id, sb.meta);
    await this.#status.put(sb.id, sb.status);
  }

  async persistStatus(sb: Sandbox): Promise<void> {
    await this.#status.put(sb.id, sb.status);
  }

  /** Forgets a sandbox: records (status first, so a half-deleted pod still has its meta), memory, name, ports. */
  async forget(sb: Sandbox): Promise<void> {
    await this.#status.delete(sb.id);
    await this.#meta.delete(sb.id);
    this.#byId.delete(sb.id);
    this.releaseName(sb.meta.nameKey, sb.id);
    this.releasePorts(sb.id);
    if (this.#parked.get(sb.meta.nameKey) === sb.id) this.#parked.delete(sb.meta.nameKey);
  }

  async deleteRecords(id: string): Promise<void> {
    await this.#status.delete(id);
    await this.#meta.delete(id);
  }

  /** Loads every record; returns problems for the caller to log. */
  async load(): Promise<{ loaded: Sandbox[]; problems: string[] }> {
    const metas = await this.#meta.loadAll();
    const statuses = await this.#status.loadAll();
    const problems = [...metas.bad, ...statuses.bad].map((b) => `${b.key}: ${b.reason}`);
    const loaded: Sandbox[] = [];
    for (const [id, meta] of metas.good) {
      // A meta without a status is a pod whose creation or removal was interrupted:
      // keep it as NOTREADY so Stop/Remove can finish the job.
      const status = statuses.good.get(id) ?? { v: 1 as const, state: 'notready' as const, ips: [], network: null, initPid: null };
      try {
        const sb = new Sandbox(meta, status);
        this.#byId.set(id, sb);
        this.#names.set(meta.nameKey, id);
        if (status.state === 'ready' && meta.portMappings.length > 0) this.#ports.set(id, meta.portMappings);
        loaded.push(sb);
      } catch (err) {
        problems.push(`${id}: ${(err as Error).message}`);
      }
    }
    return { loaded, problems };
  }
}
