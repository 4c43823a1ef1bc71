import { join } from 'node:path';
import { z } from 'zod';
import { alreadyExists } from '../../core/errors.js';
import { resolvePrefix } from '../../core/ids.js';
import { ContainerConfig, LinuxContainerResources } from '../../gen/runtime/v1/api.js';
import { JsonRecordDir } from '../../store/json-record.js';

/*
 * A container's life, owned by this file and the RPCs that move it:
 *
 *   CreateContainer ──► CREATED ──StartContainer──► RUNNING ──exit file──► EXITED
 *                          │   (start fails: EXITED, reason StartError)      │
 *                          └──────────── RemoveContainer ◄───────────────────┘
 *                                               │ (kills a RUNNING one first)
 *                                               ▼
 *                                             gone
 *
 * Intent flags (starting, stopping, removing) are checked and set in one synchronous
 * step before any await, so two RPCs never both believe they own a transition; each
 * container's runtime calls are also serialised by a KeyedMutex.
 */

export type ContainerStateName = 'created' | 'running' | 'exited';

const Ns = z.string().regex(/^\d+$/);

/** Immutable after CreateContainer. */
export const MetaSchema = z.object({
  v: z.literal(1),
  id: z.string(),
  podSandboxId: z.string(),
  name: z.string(),
  attempt: z.number().int(),
  /** The CRI ContainerConfig as protobuf bytes (base64): lossless and versioned by the proto. */
  config: z.string(),
  imageId: z.string(),
  imageName: z.string(),
  /** Absolute log path ('' when the CRI gave none). */
  logPath: z.string(),
  /** Where conmon writes when the CRI gave no log path. */
  conmonLogPath: z.string(),
  bundleDir: z.string(),
  layerDir: z.string(),
  runtimeHandler: z.string(),
  runtimePath: z.string(),
  runtimeRoot: z.string(),
  cgroupsPath: z.string(),
  stopSignal: z.string(),
  createdAt: Ns,
  user: z.object({ uid: z.number(), gid: z.number(), additionalGids: z.array(z.number()), username: z.string() }),
});

/** Changes as the container moves; written atomically on every transition. */
export const StatusSchema = z.object({
  v: z.literal(1),
  state: z.enum(['created', 'running', 'exited']),
  pid: z.number().int(),
  startedAt: Ns,
  finishedAt: Ns,
  exitCode: z.number().int(),
  reason: z.string(),
  message: z.string(),
  /** LinuxContainerResources as protobuf bytes (base64), after UpdateContainerResources. */
  resources: z.string(),
});

export type ContainerMeta = z.output<typeof MetaSchema>;
export type ContainerStatusRecord = z.output<typeof StatusSchema>;

export class Container {
  readonly meta: ContainerMeta;
  readonly config: ContainerConfig;
  status: ContainerStatusRecord;
  starting = false;
  stopping = false;
  removing = false;
  #exitWaiters: (() => void)[] = [];

  constructor(meta: ContainerMeta, status: ContainerStatusRecord) {
    this.meta = meta;
    this.status = status;
    this.config = ContainerConfig.decode(Buffer.from(meta.config, 'base64'));
  }

  get id(): string {
    return this.meta.id;
  }

  get resources(): LinuxContainerResources | undefined {
    if (this.status.resources) return LinuxContainerResources.decode(Buffer.from(this.status.resources, 'base64'));
    return this.config.linux?.resources;
  }

  /** Resolves true when the container has exited, false after ms. */
  waitExit(ms: number): Promise<boolean> {
    if (this.status.state === 'exited') return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#exitWaiters = this.#exitWaiters.filter((w) => w !== done);
        resolve(this.status.state === 'exited');
      }, ms);
      const done = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.#exitWaiters.push(done);
    });
  }

  notifyExit(): void {
    const w = this.#exitWaiters;
    this.#exitWaiters = [];
    for (const f of w) f();
  }
}

export const encodeConfig = (c: ContainerConfig) => Buffer.from(ContainerConfig.encode(c).finish()).toString('base64');
export const encodeResources = (r: LinuxContainerResources) => Buffer.from(LinuxContainerResources.encode(r).finish()).toString('base64');

/** Containers in memory, their records on disk, and name reservations (name/attempt within a pod). */
export class ContainerStore {
  readonly #meta: JsonRecordDir<typeof MetaSchema>;
  readonly #status: JsonRecordDir<typeof StatusSchema>;
  readonly #byId = new Map<string, Container>();
  readonly #names = new Map<string, string>();

  constructor(dir: string) {
    this.#meta = new JsonRecordDir(join(dir, 'meta'), MetaSchema);
    this.#status = new JsonRecordDir(join(dir, 'status'), StatusSchema);
  }

  static nameKey(podId: string, name: string, attempt: number): string {
    return `${podId}/${name}/${attempt}`;
  }

  /** Synchronous: no await between the check and the mark. */
  reserveName(key: string, id: string): void {
    const holder = this.#names.get(key);
    if (holder !== undefined) {
      const [, name, attempt] = key.split('/');
      throw alreadyExists(`container name "${name}" attempt ${attempt} is already reserved in this pod by container ${holder}`);
    }
    this.#names.set(key, id);
  }

  releaseName(key: string, id: string): void {
    if (this.#names.get(key) === id) this.#names.delete(key);
  }

  async add(c: Container): Promise<void> {
    await this.#meta.put(c.id, c.meta);
    await this.#status.put(c.id, c.status);
    this.#byId.set(c.id, c);
  }

  async persistStatus(c: Container): Promise<void> {
    await this.#status.put(c.id, c.status);
  }

  async forget(c: Container): Promise<void> {
    await this.#status.delete(c.id);
    await this.#meta.delete(c.id);
    this.#byId.delete(c.id);
    this.releaseName(ContainerStore.nameKey(c.meta.podSandboxId, c.meta.name, c.meta.attempt), c.id);
  }

  get(id: string): Container | undefined {
    return this.#byId.get(id);
  }

  /** Full id or unambiguous prefix; throws InvalidArgument when ambiguous. */
  resolve(idOrPrefix: string): Container | undefined {
    const id = resolvePrefix(idOrPrefix, this.#byId.keys(), 'container');
    return id === undefined ? undefined : this.#byId.get(id);
  }

  list(): Container[] {
    return [...this.#byId.values()];
  }

  inPod(podId: string): Container[] {
    return this.list().filter((c) => c.meta.podSandboxId === podId);
  }

  /** Loads every record; a record without its pair is reported as bad. */
  async load(): Promise<{ loaded: Container[]; bad: string[] }> {
    const metas = await this.#meta.loadAll();
    const statuses = await this.#status.loadAll();
    const loaded: Container[] = [];
    const bad = [...metas.bad.map((b) => `${b.key}: ${b.reason}`), ...statuses.bad.map((b) => `${b.key}: ${b.reason}`)];
    for (const [id, meta] of metas.good) {
      const st = statuses.good.get(id);
      if (!st) {
        bad.push(`${id}: status record missing`);
        continue;
      }
      const c = new Container(meta, st);
      this.#byId.set(id, c);
      this.#names.set(ContainerStore.nameKey(meta.podSandboxId, meta.name, meta.attempt), id);
      loaded.push(c);
    }
    return { loaded, bad };
  }

  async dropRecords(id: string): Promise<void> {
    await this.#status.delete(id);
    await this.#meta.delete(id);
  }
}
