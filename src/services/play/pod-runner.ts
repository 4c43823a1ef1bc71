import { chmod, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { hostname, totalmem } from 'node:os';
import { mountShm, unmountShm } from '../../host/shm.js';
import { dirname, isAbsolute, join } from 'node:path';
import type { Logger } from 'pino';
import { isCode } from '../../core/errors.js';
import { ContainerState, NamespaceMode, PodSandboxState, Protocol, SecurityProfile_ProfileType, type LinuxContainerConfig, type Container, type ContainerConfig, type DeepPartial, type PodSandboxConfig } from '../../gen/runtime/v1/api.js';
import { restartDelayMs } from './backoff.js';
import type { CriCall } from './cri-caller.js';
import type { ContainerSpec, PodManifest } from './manifest-types.js';
import type { PlayedPod } from './api.js';
import { ContainerProbes, runHook } from './prober.js';

export const LABEL_UID = 'io.cricket.play.uid';
export const LABEL_POD = 'io.cricket.play.pod';

export interface PodRunnerDeps {
  cri: CriCall;
  log: Logger;
  /** Where emptyDir volumes of this pod live (removed with the pod). */
  volumesDir: string;
  /** Called when the runner wants another look at a given time (back-off ends). */
  wakeAt(ms: number): void;
  now?: () => number;
}

export type PodRow = PlayedPod;

/**
 * One played pod, driven toward its manifest the way kubelet's pod workers do it, one
 * sync at a time (sync() calls made while one runs are folded into one more):
 *
 *   no sandbox ─RunPodSandbox─► sandbox ready ─► init containers, one at a time, each to
 *   exit 0 (restarted per restartPolicy, with back-off) ─► every container created and
 *   started; an exited one restarted per restartPolicy after its back-off
 *   (a sandbox found not ready is removed and made again, its containers with it)
 *
 * Restart counts are the containers' CRI attempts, so they survive a daemon restart.
 */
export class PodRunner {
  readonly manifest: PodManifest;
  readonly uid: string;
  readonly createdAt: number;
  readonly #logDir: string;
  readonly #d: PodRunnerDeps;
  #sandboxId = '';
  #podIp = '';
  #status = 'Pending';
  #running: Promise<void> | undefined;
  /** The probes of each running container with any, by container id. */
  readonly #probes = new Map<string, ContainerProbes>();
  /** Ids of this pod's containers as last listed (and those it just made). */
  #containerIds = new Set<string>();
  #again = false;
  #down = false;

  constructor(manifest: PodManifest, uid: string, createdAt: number, logDir: string, d: PodRunnerDeps) {
    this.manifest = manifest;
    this.uid = uid;
    this.createdAt = createdAt;
    this.#logDir = logDir;
    this.#d = d;
  }

  get sandboxId(): string {
    return this.#sandboxId;
  }

  /** Whether a container event is about this pod (events name the container, not the pod). */
  owns(containerId: string): boolean {
    return this.#containerIds.has(containerId);
  }

  /** Asks for a sync; resolves when one that started after this call has finished. */
  sync(): Promise<void> {
    if (this.#down) return Promise.resolve();
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    this.#running = (async () => {
      do {
        this.#again = false;
        try {
          await this.#syncOnce();
        } catch (err) {
          this.#status = 'Error';
          this.#d.log.warn({ pod: this.#key(), err: (err as Error).message }, 'play: pod sync failed; will retry');
          this.#d.wakeAt(this.#now() + 5000);
        }
      } while (this.#again && !this.#down);
    })().finally(() => (this.#running = undefined));
    return this.#running;
  }

  /** Stops and removes the pod and its volumes; the runner does nothing after. */
  async down(): Promise<void> {
    this.#down = true;
    this.#status = 'Terminating';
    await this.#running?.catch(() => {});
    this.stopProbes();
    const { items } = await this.#d.cri('ListPodSandbox', { filter: { labelSelector: { [LABEL_UID]: this.uid } } });
    for (const p of items) {
      // Each container gets the pod's grace period (SIGTERM, then SIGKILL), as kubelet
      // stops them, before the sandbox goes (StopPodSandbox alone would not wait).
      const { containers } = await this.#d.cri('ListContainers', { filter: { podSandboxId: p.id } });
      await Promise.all(containers.filter((c) => c.state === ContainerState.CONTAINER_RUNNING).map((c) => this.#stopWithHook(c)));
      await this.#d.cri('StopPodSandbox', { podSandboxId: p.id });
      await this.#d.cri('RemovePodSandbox', { podSandboxId: p.id });
    }
    for (const v of this.manifest.volumes) {
      const dir = join(this.#d.volumesDir, v.name);
      if (v.emptyDir?.medium === 'Memory' && (await isMountPoint(dir))) await unmountShm(dir);
    }
    await rm(this.#d.volumesDir, { recursive: true, force: true });
  }

  /** kubelet's container stop: the preStop hook within the grace period, then SIGTERM with what is left of it. */
  async #stopWithHook(c: Container): Promise<void> {
    const grace = this.manifest.terminationGracePeriodSeconds;
    const spec = [...this.manifest.initContainers, ...this.manifest.containers].find((s) => s.name === c.metadata?.name);
    const started = this.#now();
    const hook = spec?.lifecycle.preStop;
    if (hook && grace > 0) {
      const ok = await runHook(this.#d.cri, hook, { containerId: c.id, host: this.#hookHost() }, grace);
      if (!ok) this.#d.log.warn({ pod: this.#key(), container: spec?.name }, 'play: preStop hook failed');
    }
    const left = Math.max(0, grace - Math.ceil((this.#now() - started) / 1000));
    await this.#d.cri('StopContainer', { containerId: c.id, timeout: BigInt(left) });
  }

  #hookHost(): string {
    return this.manifest.hostNetwork ? '127.0.0.1' : this.#podIp;
  }

  /** Daemon shutdown or down: no more probe runs. */
  stopProbes(): void {
    for (const p of this.#probes.values()) p.stop();
    this.#probes.clear();
  }

  async row(): Promise<PodRow> {
    const total = this.manifest.containers.length;
    let ready = 0;
    let restarts = 0;
    if (this.#sandboxId) {
      const cs = latestByName((await this.#d.cri('ListContainers', { filter: { podSandboxId: this.#sandboxId } })).containers);
      for (const c of this.manifest.containers) {
        const got = cs.get(c.name);
        if (got?.state === ContainerState.CONTAINER_RUNNING && (this.#probes.get(got.id)?.ready ?? true)) ready++;
        restarts += got?.metadata?.attempt ?? 0;
      }
    }
    return { name: this.manifest.name, namespace: this.manifest.namespace, ready: `${ready}/${total}`, status: this.#status, restarts, createdAt: this.createdAt, sandboxId: this.#sandboxId };
  }

  #key(): string {
    return `${this.manifest.namespace}/${this.manifest.name}`;
  }

  #now(): number {
    return (this.#d.now ?? Date.now)();
  }

  async #syncOnce(): Promise<void> {
    const { cri } = this.#d;
    await this.#ensureSandbox();
    if (this.#down) return;
    const cs = latestByName((await cri('ListContainers', { filter: { podSandboxId: this.#sandboxId } })).containers);
    const m = this.manifest;
    this.#containerIds = new Set([...cs.values()].map((c) => c.id));
    this.#syncProbes(cs);
    // Init containers, in order, each to a clean exit.
    for (const [i, spec] of m.initContainers.entries()) {
      const c = cs.get(spec.name);
      if (c && c.state === ContainerState.CONTAINER_EXITED) {
        const st = (await cri('ContainerStatus', { containerId: c.id })).status;
        if (st?.exitCode === 0) continue;
        if (m.restartPolicy === 'Never') {
          this.#status = 'Init:Error';
          return;
        }
        if (!(await this.#restartWhenDue(spec, c, Number(st?.startedAt ?? 0n), Number(st?.finishedAt ?? 0n)))) {
          this.#status = 'Init:CrashLoopBackOff';
          return;
        }
      } else if (!c) {
        if (!(await this.#start(spec, 0))) return;
      }
      this.#status = `Init:${i}/${m.initContainers.length}`;
      return; // running (or just started): its exit brings the next sync
    }
    let exitedOk = 0;
    let failed = false;
    let waiting = false;
    for (const spec of m.containers) {
      const c = cs.get(spec.name);
      if (!c) {
        if (!(await this.#start(spec, 0))) return;
        continue;
      }
      if (c.state !== ContainerState.CONTAINER_EXITED) continue;
      const st = (await cri('ContainerStatus', { containerId: c.id })).status;
      const code = st?.exitCode ?? 1;
      const restart = m.restartPolicy === 'Always' || (m.restartPolicy === 'OnFailure' && code !== 0);
      if (!restart) {
        if (code === 0) exitedOk++;
        else failed = true;
        continue;
      }
      if (!(await this.#restartWhenDue(spec, c, Number(st?.startedAt ?? 0n), Number(st?.finishedAt ?? 0n)))) waiting = true;
    }
    this.#status = waiting ? 'CrashLoopBackOff' : failed ? 'Error' : exitedOk === m.containers.length ? 'Completed' : 'Running';
  }

  /** Probes for each running container that has any (also ones adopted after a restart); none for the rest. */
  #syncProbes(cs: Map<string, Container>): void {
    const live = new Set<string>();
    for (const spec of this.manifest.containers) {
      const c = cs.get(spec.name);
      if (!c || c.state !== ContainerState.CONTAINER_RUNNING) continue;
      if (!spec.livenessProbe && !spec.readinessProbe && !spec.startupProbe) continue;
      live.add(c.id);
      if (this.#probes.has(c.id)) continue;
      const id = c.id;
      const probes = new ContainerProbes(spec, { containerId: id, host: this.manifest.hostNetwork ? '127.0.0.1' : this.#podIp }, {
        cri: this.#d.cri,
        onUnhealthy: (why) => {
          this.#d.log.info({ pod: this.#key(), container: spec.name, why }, 'play: container unhealthy; stopping it');
          void this.#stopWithHook(c)
            .catch((err: unknown) => this.#d.log.warn({ err: (err as Error).message }, 'play: stopping an unhealthy container failed'))
            .then(() => this.sync());
        },
      });
      this.#probes.set(id, probes);
      probes.start();
    }
    for (const [id, p] of this.#probes) {
      if (live.has(id)) continue;
      p.stop();
      this.#probes.delete(id);
    }
  }

  /** Starts the next attempt once the back-off has passed (true), else asks to be woken then (false). */
  async #restartWhenDue(spec: ContainerSpec, old: Container, startedNs: number, finishedNs: number): Promise<boolean> {
    const attempt = old.metadata?.attempt ?? 0;
    const finished = finishedNs / 1e6;
    const due = finished + restartDelayMs(attempt, (finishedNs - startedNs) / 1e6);
    if (this.#now() < due) {
      this.#d.wakeAt(due);
      return false;
    }
    // The dead attempt goes (kubelet keeps one for logs; its log file stays in the pod's log dir).
    await this.#d.cri('RemoveContainer', { containerId: old.id });
    return this.#start(spec, attempt + 1);
  }

  async #ensureSandbox(): Promise<void> {
    const { cri } = this.#d;
    if (this.#sandboxId) {
      const st = await cri('PodSandboxStatus', { podSandboxId: this.#sandboxId }).catch((err: unknown) => {
        if (isCode(err, 'NotFound')) return undefined;
        throw err;
      });
      if (st?.status?.state === PodSandboxState.SANDBOX_READY) return;
      this.#sandboxId = '';
    }
    // After a daemon restart, the pod made before it is adopted; one not ready is made again.
    const { items } = await cri('ListPodSandbox', { filter: { labelSelector: { [LABEL_UID]: this.uid } } });
    for (const p of items) {
      if (p.state === PodSandboxState.SANDBOX_READY && !this.#sandboxId) this.#sandboxId = p.id;
      else {
        await cri('StopPodSandbox', { podSandboxId: p.id });
        await cri('RemovePodSandbox', { podSandboxId: p.id });
      }
    }
    if (!this.#sandboxId) {
      this.#status = 'ContainerCreating';
      this.#sandboxId = (await cri('RunPodSandbox', { config: this.#podConfig(), runtimeHandler: this.manifest.runtimeClassName })).podSandboxId;
      this.#d.log.info({ pod: this.#key(), id: this.#sandboxId }, 'play: pod sandbox made');
    }
    const st = await cri('PodSandboxStatus', { podSandboxId: this.#sandboxId });
    this.#podIp = st.status?.network?.ip ?? '';
  }

  #podConfig(): DeepPartial<PodSandboxConfig> {
    const m = this.manifest;
    const dns = m.dnsConfig ? { dnsConfig: m.dnsConfig } : {};
    const ports = [...m.initContainers, ...m.containers].flatMap((c) => c.ports.filter((p) => p.hostPort > 0));
    return {
      metadata: { name: m.name, namespace: m.namespace, uid: this.uid, attempt: 0 },
      hostname: m.hostNetwork ? '' : m.hostname,
      logDirectory: join(this.#logDir, `${m.namespace}_${m.name}_${this.uid}`),
      labels: { ...m.labels, [LABEL_UID]: this.uid, [LABEL_POD]: `${m.namespace}.${m.name}` },
      annotations: m.annotations,
      portMappings: ports.map((p) => ({ containerPort: p.containerPort, hostPort: p.hostPort, protocol: protocolOf(p.protocol) })),
      linux: { securityContext: { namespaceOptions: { network: m.hostNetwork ? NamespaceMode.NODE : NamespaceMode.POD } } },
      ...dns,
    };
  }

  /** Makes sure the image is there (per imagePullPolicy), creates and starts one attempt. False: it could not. */
  async #start(spec: ContainerSpec, attempt: number): Promise<boolean> {
    const { cri } = this.#d;
    const present = (await cri('ImageStatus', { image: { image: spec.image } })).image !== undefined;
    if (spec.imagePullPolicy === 'Never' && !present) {
      this.#status = 'ErrImageNeverPull';
      return false;
    }
    if (spec.imagePullPolicy === 'Always' || !present) {
      try {
        await cri('PullImage', { image: { image: spec.image } });
      } catch (err) {
        this.#status = 'ErrImagePull';
        this.#d.log.warn({ pod: this.#key(), image: spec.image, err: (err as Error).message }, 'play: image pull failed');
        this.#d.wakeAt(this.#now() + 10_000);
        return false;
      }
    }
    const config = await this.#containerConfig(spec, attempt);
    const { containerId } = await cri('CreateContainer', { podSandboxId: this.#sandboxId, config, sandboxConfig: this.#podConfig() });
    this.#containerIds.add(containerId);
    await cri('StartContainer', { containerId });
    const post = spec.lifecycle.postStart;
    if (post) {
      // kubelet: a failed postStart hook kills the container, which then restarts per policy.
      const ok = await runHook(cri, post, { containerId, host: this.#hookHost() }, postStartTimeoutSeconds(this.manifest.terminationGracePeriodSeconds));
      if (!ok) {
        this.#d.log.warn({ pod: this.#key(), container: spec.name }, 'play: postStart hook failed; stopping the container');
        await cri('StopContainer', { containerId, timeout: 0n });
      }
    }
    // One more pass sees it running (its probes start there).
    this.#again = true;
    return true;
  }

  async #containerConfig(spec: ContainerSpec, attempt: number): Promise<DeepPartial<ContainerConfig>> {
    const m = this.manifest;
    const field: Record<string, string> = {
      'metadata.name': m.name,
      'metadata.namespace': m.namespace,
      'metadata.uid': this.uid,
      'status.podIP': this.#podIp,
      'spec.nodeName': hostname(),
    };
    const mounts = [];
    for (const vm of spec.volumeMounts) {
      const vol = m.volumes.find((v) => v.name === vm.name)!;
      let hostPath = vol.hostPath?.path;
      let readonly = vm.readOnly;
      if (vol.emptyDir?.medium === 'Memory') {
        // A tmpfs, as kubelet makes it; mounted once per pod (again after a reboot emptied it).
        hostPath = join(this.#d.volumesDir, vol.name);
        if (!(await isMountPoint(hostPath))) await mountShm(hostPath, vol.emptyDir.sizeBytes ?? Math.floor(totalmem() / 2));
      } else if (vol.emptyDir) {
        hostPath = join(this.#d.volumesDir, vol.name);
        await mkdir(hostPath, { recursive: true });
        await chmod(hostPath, 0o777); // as kubelet makes it: any container user may write (mkdir's mode is under the umask)
      }
      if (vol.files) {
        // configMap/secret: written once per pod (a changed manifest is a new pod), into a
        // temp dir renamed into place; mounted read-only, files 0644 as kubelet's default.
        hostPath = join(this.#d.volumesDir, vol.name);
        if (!(await exists(hostPath))) {
          const tmp = `${hostPath}.tmp`;
          await rm(tmp, { recursive: true, force: true });
          await mkdir(tmp, { recursive: true, mode: 0o755 });
          for (const f of vol.files) {
            const target = join(tmp, f.path);
            await mkdir(dirname(target), { recursive: true, mode: 0o755 });
            await writeFile(target, Buffer.from(f.dataB64, 'base64'), { mode: 0o644 });
          }
          await rename(tmp, hostPath);
        }
        readonly = true;
      }
      if (hostPath === undefined) continue;
      mounts.push({ containerPath: vm.mountPath, hostPath, readonly });
    }
    return {
      linux: linuxOf(spec, m),
      metadata: { name: spec.name, attempt },
      image: { image: spec.image },
      command: spec.command,
      args: spec.args,
      workingDir: spec.workingDir,
      envs: spec.env.map((e) => ({ key: e.name, value: Buffer.from(e.fieldPath !== undefined ? (field[e.fieldPath] ?? '') : (e.value ?? '')) })),
      mounts,
      logPath: `${spec.name}/${attempt}.log`,
      labels: { [LABEL_UID]: this.uid, 'io.kubernetes.container.name': spec.name },
    };
  }
}

/**
 * resources and securityContext as kubelet gives them to the CRI: CPU request → shares
 * (1024 per core, at least 2), CPU limit → quota over a 100 ms period, memory limit →
 * bytes; allowPrivilegeEscalation: false → no_new_privs; the pod's runAsUser, runAsGroup
 * and seccompProfile are the container's defaults; a relative Localhost profile is under
 * kubelet's seccomp root.
 */
export function linuxOf(spec: ContainerSpec, pod: PodManifest): DeepPartial<LinuxContainerConfig> {
  const r = spec.resources;
  const sc = { ...pod.securityContext, ...spec.securityContext };
  const period = 100_000;
  const seccomp = sc.seccompProfile;
  return {
    resources: {
      cpuShares: BigInt(r.cpuRequestMilli !== undefined ? Math.max(2, Math.floor((r.cpuRequestMilli * 1024) / 1000)) : 0),
      cpuPeriod: BigInt(r.cpuLimitMilli !== undefined ? period : 0),
      cpuQuota: BigInt(r.cpuLimitMilli !== undefined ? Math.max(1000, Math.floor((r.cpuLimitMilli * period) / 1000)) : 0),
      memoryLimitInBytes: BigInt(r.memoryLimitBytes ?? 0),
    },
    securityContext: {
      ...(sc.runAsUser !== undefined ? { runAsUser: { value: BigInt(sc.runAsUser) } } : {}),
      ...(sc.runAsGroup !== undefined ? { runAsGroup: { value: BigInt(sc.runAsGroup) } } : {}),
      privileged: sc.privileged === true,
      readonlyRootfs: sc.readOnlyRootFilesystem === true,
      noNewPrivs: sc.allowPrivilegeEscalation === false,
      ...(sc.capabilities ? { capabilities: { addCapabilities: sc.capabilities.add, dropCapabilities: sc.capabilities.drop } } : {}),
      ...(seccomp
        ? {
            seccomp: {
              profileType: SecurityProfile_ProfileType[seccomp.type],
              localhostRef: seccomp.type === 'Localhost' ? (isAbsolute(seccomp.localhostProfile) ? seccomp.localhostProfile : join('/var/lib/kubelet/seccomp', seccomp.localhostProfile)) : '',
            },
          }
        : {}),
    },
  };
}

/** The time a postStart hook may take: kubelet gives it none of its own; ours is bounded by the grace period, at least 30 s. */
function postStartTimeoutSeconds(grace: number): number {
  return Math.max(30, grace);
}

/** Whether a path is a mount point now (/proc/self/mountinfo's fifth field, octal escapes as the kernel writes them). */
async function isMountPoint(p: string): Promise<boolean> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  const esc = p.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
  return info.split('\n').some((l) => l.split(' ')[4] === esc);
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

function protocolOf(p: 'TCP' | 'UDP' | 'SCTP'): Protocol {
  return p === 'UDP' ? Protocol.UDP : p === 'SCTP' ? Protocol.SCTP : Protocol.TCP;
}

/** The newest attempt of each container name. */
function latestByName(cs: readonly Container[]): Map<string, Container> {
  const out = new Map<string, Container>();
  for (const c of cs) {
    const name = c.metadata?.name ?? '';
    const prev = out.get(name);
    if (!prev || (c.metadata?.attempt ?? 0) > (prev.metadata?.attempt ?? 0)) out.set(name, c);
  }
  return out;
}
