import { z } from 'zod';
import { alreadyExists } from '../../core/errors.js';
import { ContainerConfig, LinuxContainerResources } from '../../gen/runtime/v1/api.js';
import { fromBase64 } from '../../store/proto-base64.js';
import { RecordStore, type RecordKind } from '../../store/record-store.js';

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
 *
 * The meta and status records are kept by store/record-store.ts under <root>/containers.
 * A meta whose status is missing is a create or a removal a crash cut between the two
 * writes: load reports it half-written and recovery undoes it.
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
  /** The handler's global flags and type when the container was made (records before them: none, oci). */
  runtimeArgs: z.array(z.string()).default([]),
  runtimeType: z.enum(['oci', 'sandbox']).default('oci'),
  /** The pod's gVisor sandbox the container joined (runtime/pod-sandbox.ts); absent: a sandbox of its own, or not gVisor. */
  joinedSandbox: z.string().optional(),
  cgroupsPath: z.string(),
  /**
   * The pod cgroup's oom_kill count (memory.events, which counts the whole subtree) when
   * the container was made; set only for a systemd scope (see lifecycle.ts recordExit).
   */
  podOomKills: z.number().int().optional(),
  stopSignal: z.string(),
  createdAt: Ns,
  user: z.object({ uid: z.number(), gid: z.number(), additionalGids: z.array(z.number()), username: z.string() }),
  /** Images mounted as volumes (held while the container exists); none in records before image volumes. */
  imageVolumes: z.array(z.object({ imageId: z.string(), containerPath: z.string() })).default([]),
});

/** Where a container's image volumes are mounted, one numbered dir each, under its bundle. */
export const IMAGE_VOLUMES_DIR = 'image-volumes';
/** In a bundle: the idmapped views of a user-namespaced pod's mounts, unmounted once runc has bound them (and by every removal). */
export const IDMAPPED_DIR = 'idmapped';

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
  /** An exit recorded while the start was under way: its STOPPED event waits for the STARTED one. */
  stoppedEventDeferred = false;
  stopping = false;
  removing = false;
  /** Deleted from its runtime after its exit (releaseRuntimeSoon); not kept across restarts. */
  runtimeReleased = false;
  /** The exit's bookkeeping and that release, once the exit watcher saw the exit (tests wait on it). */
  exitHandled: Promise<void> | undefined;
  #exitWaiters: (() => void)[] = [];

  constructor(meta: ContainerMeta, status: ContainerStatusRecord) {
    this.meta = meta;
    this.status = status;
    this.config = fromBase64(ContainerConfig, meta.config);
  }

  get id(): string {
    return this.meta.id;
  }

  get resources(): LinuxContainerResources | undefined {
    if (this.status.resources) return fromBase64(LinuxContainerResources, this.status.resources);
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

const containerKind: RecordKind<ContainerMeta, ContainerStatusRecord, Container> = {
  noun: 'container',
  metaSchema: MetaSchema,
  statusSchema: StatusSchema,
  build: (meta, status) => new Container(meta, status),
  nameKey: (meta) => ContainerStore.nameKey(meta.podSandboxId, meta.name, meta.attempt),
  nameTaken: (key, holder) => {
    const [, name, attempt] = key.split('/');
    return alreadyExists(`container name "${name}" attempt ${attempt} is already reserved in this pod by container ${holder}`);
  },
};

/** Containers in memory, their records on disk, and name reservations (name/attempt within a pod). */
export class ContainerStore extends RecordStore<ContainerMeta, ContainerStatusRecord, Container> {
  constructor(root: string) {
    super(root, containerKind);
  }

  static nameKey(podId: string, name: string, attempt: number): string {
    return `${podId}/${name}/${attempt}`;
  }

  inPod(podId: string): Container[] {
    return this.list().filter((c) => c.meta.podSandboxId === podId);
  }
}
