import { status } from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  ContainerState,
  NamespaceMode,
  PodSandboxState,
  type ContainerConfig,
  type DeepPartial,
  type PodSandboxConfig,
} from '../../src/gen/runtime/v1/api.js';
import { spdyExec } from '../helpers/spdy-client.js';
import { wsExec } from '../helpers/ws-client.js';
import type { SoakEnv } from './env.js';
import { Failed, Provoked, type SoakRpc } from './rpc.js';

// The pod side of the churn, as kubelet's pod workers do it: each pod is run, its one
// container created and started; it lives a random while, meanwhile probed (ExecSync),
// exec'd into (SPDY and WebSocket), its log rotated (rename + ReopenContainerLog), its
// status polled; then it is stopped and removed. When a create is cut by the soak's
// SIGKILL, the worker does what kubelet's computePodActions does after a restart: list
// what the daemon has for the pod, keep a READY sandbox and a RUNNING container, remove
// the rest, recreate with the next attempt number.

export interface PodParams {
  target: number;
  parallel: number;
  lifeMs: number;
  maxPods: number;
  actionsPerSec: number;
}

interface Pod {
  n: number;
  uid: string;
  name: string;
  attempt: number;
  ctrAttempt: number;
  podId?: string;
  ctrId?: string;
  state: 'creating' | 'live' | 'leaving';
  dieAt: number;
  users: number;
  logDir: string;
  /** A rotation is under way (kubelet rotates one container's log at a time). */
  rotating: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const LABEL = 'soak.uid';
// Logs a line every 2 s; ends at once on SIGTERM (the wait is interruptible, sleep is not).
const MAIN = ['sh', '-c', 'trap "exit 0" TERM; i=0; while :; do i=$((i+1)); echo "tick $i"; sleep 2 & wait $!; done'];
const CRI_LINE = /^\d{4}-\d\d-\d\dT\S+ (stdout|stderr) [PF] /;

export class PodChurn {
  readonly pods = new Map<string, Pod>();
  stopping = false;
  created = 0;
  removed = 0;
  createFailed = 0;
  converged = 0;
  peak = 0;
  readonly actions = new Map<string, number>();
  readonly stopExitCodes = new Map<number, number>();
  #seq = 0;

  constructor(
    private readonly rpc: SoakRpc,
    private readonly env: SoakEnv,
    private readonly p: PodParams,
    private readonly rnd: () => number,
  ) {}

  /** One of the `parallel` pod workers. */
  async worker(): Promise<void> {
    while (!this.stopping) {
      const alive = this.pods.size;
      if (alive < this.p.target && this.#seq < this.p.maxPods) {
        await this.#create();
        continue;
      }
      const now = Date.now();
      const due = [...this.pods.values()].find((x) => x.state === 'live' && x.dieAt <= now);
      if (due) await this.#remove(due);
      else await sleep(200);
    }
  }

  /** Pod actions (probes, exec, logs, status) at about actionsPerSec, from `actors` loops. */
  async actor(actors: number): Promise<void> {
    const period = (1000 * actors) / this.p.actionsPerSec;
    while (!this.stopping) {
      const t0 = Date.now();
      const live = [...this.pods.values()].filter((x) => x.state === 'live');
      if (live.length > 0) {
        const pod = live[Math.floor(this.rnd() * live.length)]!;
        pod.users++;
        try {
          await this.#act(pod);
        } catch {
          // counted where it happened
        } finally {
          pod.users--;
        }
      }
      await sleep(Math.max(0, period * (0.5 + this.rnd()) - (Date.now() - t0)));
    }
  }

  /** Containers of pods that are up and not being removed. */
  liveContainers(): string[] {
    return [...this.pods.values()].filter((x) => x.state === 'live').map((x) => x.ctrId!);
  }

  /** After stop: removes every pod the soak holds, `parallel` at a time. */
  async drain(): Promise<void> {
    const queue = [...this.pods.values()];
    await Promise.all(
      Array.from({ length: this.p.parallel }, async () => {
        for (let pod = queue.shift(); pod; pod = queue.shift()) await this.#remove(pod);
      }),
    );
  }

  #podConfig(pod: Pod): DeepPartial<PodSandboxConfig> {
    return {
      metadata: { name: pod.name, namespace: 'soak', uid: pod.uid, attempt: pod.attempt },
      hostname: pod.name,
      logDirectory: pod.logDir,
      labels: { [LABEL]: pod.uid },
      linux: {
        cgroupParent: `${this.env.cgroupRoot}/pod-${pod.uid}`,
        securityContext: { namespaceOptions: { network: NamespaceMode.POD, pid: NamespaceMode.CONTAINER, ipc: NamespaceMode.POD } },
      },
    };
  }

  #ctrConfig(pod: Pod): DeepPartial<ContainerConfig> {
    return {
      metadata: { name: 'main', attempt: pod.ctrAttempt },
      image: { image: this.env.image!.ref },
      command: MAIN,
      logPath: `main/${pod.ctrAttempt}.log`,
      labels: { [LABEL]: pod.uid },
    };
  }

  #logPath(pod: Pod): string {
    return join(pod.logDir, 'main', `${pod.ctrAttempt}.log`);
  }

  async #create(): Promise<void> {
    const n = ++this.#seq;
    const uid = `${n}-${randomBytes(4).toString('hex')}`;
    const name = `soak-${n}`;
    const pod: Pod = { n, uid, name, attempt: 0, ctrAttempt: 0, state: 'creating', dieAt: 0, users: 0, rotating: false, logDir: join(this.env.logs, `soak_${name}_${uid}`) };
    this.pods.set(uid, pod);
    this.peak = Math.max(this.peak, this.pods.size);
    try {
      try {
        await this.#build(pod);
      } catch (err) {
        if (!(err instanceof Provoked)) throw err;
        await this.#converge(pod);
        this.converged++;
      }
      this.created++;
      pod.state = 'live';
      pod.dieAt = Date.now() + this.p.lifeMs * (0.5 + this.rnd());
    } catch (err) {
      // A real failure (already counted): tidy up whatever exists for the pod, as kubelet would.
      this.createFailed++;
      if (!(err instanceof Failed) && !(err instanceof Provoked)) this.rpc.checkFailed('create-pod', (err as Error).message);
      await this.#removeAllOf(pod).catch(() => {});
      this.pods.delete(uid);
      rmSync(pod.logDir, { recursive: true, force: true });
    }
  }

  async #build(pod: Pod): Promise<void> {
    const config = this.#podConfig(pod);
    pod.podId = (await this.rpc.must('RunPodSandbox', { config }, { retry: 'never' })).podSandboxId;
    const st = (await this.rpc.must('PodSandboxStatus', { podSandboxId: pod.podId })).status;
    if (st?.state !== PodSandboxState.SANDBOX_READY || !st.network?.ip.startsWith(`${this.env.net.subnetPrefix}.`)) {
      this.rpc.checkFailed('pod-ready', `pod ${pod.podId} after RunPodSandbox: state ${st?.state}, ip "${st?.network?.ip}"`);
    }
    await this.#ensureImage();
    await this.#startContainer(pod, config);
  }

  /** kubelet asks ImageStatus before each create and pulls when the image is missing. */
  async #ensureImage(): Promise<void> {
    const ref = this.env.image!.ref;
    const st = await this.rpc.must('ImageStatus', { image: { image: ref } });
    if (!st.image) {
      this.rpc.checkFailed('image-present', `ImageStatus: ${ref} (in use, never removed) is missing`);
      await this.rpc.call('PullImage', { image: { image: ref } }, { retry: 'always' });
    }
  }

  async #startContainer(pod: Pod, sandboxConfig: DeepPartial<PodSandboxConfig>): Promise<void> {
    pod.ctrId = (await this.rpc.must('CreateContainer', { podSandboxId: pod.podId!, config: this.#ctrConfig(pod), sandboxConfig }, { retry: 'never' }))
      .containerId;
    await this.rpc.must('StartContainer', { containerId: pod.ctrId }, { retry: 'never' });
    await this.#checkRunning(pod);
  }

  async #checkRunning(pod: Pod): Promise<void> {
    const st = (await this.rpc.must('ContainerStatus', { containerId: pod.ctrId! })).status;
    if (st?.state !== ContainerState.CONTAINER_RUNNING) {
      const msg = `container ${pod.ctrId} of pod ${pod.podId}: state ${st?.state}, exit ${st?.exitCode}, ${st?.reason} ${st?.message}`;
      this.rpc.checkFailed('container-running', msg);
      throw new Failed('check:container-running', undefined, msg);
    }
  }

  /** After a provoked failure mid-create: converge on what the daemon lists. */
  async #converge(pod: Pod): Promise<void> {
    for (let round = 0; round < 6; round++) {
      try {
        const sbs = (await this.rpc.must('ListPodSandbox', { filter: { labelSelector: { [LABEL]: pod.uid } } })).items;
        const ready = sbs.filter((s) => s.state === PodSandboxState.SANDBOX_READY).sort((a, b) => b.metadata!.attempt - a.metadata!.attempt)[0];
        for (const s of sbs) if (s !== ready) await this.#removeSandbox(s.id, undefined);
        if (!ready) {
          pod.attempt = Math.max(pod.attempt, ...sbs.map((s) => s.metadata!.attempt)) + 1;
          pod.ctrAttempt = 0;
          await this.#build(pod);
          return;
        }
        pod.podId = ready.id;
        pod.attempt = ready.metadata!.attempt;
        const cs = (await this.rpc.must('ListContainers', { filter: { podSandboxId: ready.id } })).containers;
        const keep =
          cs.find((c) => c.state === ContainerState.CONTAINER_RUNNING) ?? cs.find((c) => c.state === ContainerState.CONTAINER_CREATED);
        for (const c of cs) if (c !== keep) await this.rpc.call('RemoveContainer', { containerId: c.id }, { retry: 'always' });
        if (keep) {
          pod.ctrId = keep.id;
          pod.ctrAttempt = keep.metadata!.attempt;
          if (keep.state === ContainerState.CONTAINER_CREATED) await this.rpc.must('StartContainer', { containerId: keep.id }, { retry: 'never' });
          await this.#checkRunning(pod);
          return;
        }
        pod.ctrAttempt = Math.max(pod.ctrAttempt, ...cs.map((c) => c.metadata!.attempt + 1));
        await this.#ensureImage();
        await this.#startContainer(pod, this.#podConfig(pod));
        return;
      } catch (err) {
        if (!(err instanceof Provoked)) throw err;
      }
    }
    this.rpc.checkFailed('converge', `pod ${pod.uid}: no READY pod with a RUNNING container after 6 rounds`);
    throw new Failed('check:converge', undefined, 'no convergence');
  }

  async #removeSandbox(podSandboxId: string, containerId: string | undefined): Promise<void> {
    if (containerId && this.rnd() < 0.8) {
      await this.rpc.call('StopContainer', { containerId, timeout: 5n }, { retry: 'always' });
      const st = await this.rpc.call('ContainerStatus', { containerId }, { expect: [status.NOT_FOUND] });
      const code = st?.status?.exitCode ?? -1;
      this.stopExitCodes.set(code, (this.stopExitCodes.get(code) ?? 0) + 1);
      // The container ends on SIGTERM with 0 at once: anything else is worth a look in the daemon log.
      if (code !== 0) process.stdout.write(`[soak] note: container ${containerId} stopped with exit ${code} (${st?.status?.reason ?? ''})\n`);
    }
    await this.rpc.call('StopPodSandbox', { podSandboxId }, { retry: 'always' });
    if (containerId) await this.rpc.call('RemoveContainer', { containerId }, { retry: 'always' });
    await this.rpc.call('RemovePodSandbox', { podSandboxId }, { retry: 'always' });
    const after = await this.rpc.call('PodSandboxStatus', { podSandboxId }, { expect: [status.NOT_FOUND] });
    if (after) this.rpc.checkFailed('removed', `PodSandboxStatus of removed pod ${podSandboxId} answered state ${after.status?.state}`);
  }

  /** Everything the daemon lists for the pod, removed. */
  async #removeAllOf(pod: Pod): Promise<void> {
    const sbs = (await this.rpc.must('ListPodSandbox', { filter: { labelSelector: { [LABEL]: pod.uid } } }, { retry: 'always' })).items;
    for (const s of sbs) await this.#removeSandbox(s.id, undefined);
  }

  async #remove(pod: Pod): Promise<void> {
    pod.state = 'leaving';
    while (pod.users > 0) await sleep(50);
    try {
      await this.#removeSandbox(pod.podId!, pod.ctrId);
      const rest = (await this.rpc.must('ListPodSandbox', { filter: { labelSelector: { [LABEL]: pod.uid } } })).items;
      if (rest.length > 0) this.rpc.checkFailed('removed', `pod ${pod.uid}: still listed after RemovePodSandbox: ${rest.map((s) => s.id).join(' ')}`);
      for (const s of rest) await this.#removeSandbox(s.id, undefined);
      this.removed++;
      this.pods.delete(pod.uid);
      rmSync(pod.logDir, { recursive: true, force: true });
    } catch {
      // Failed after retries (counted): leave it listed for the final sweep.
      pod.state = 'leaving';
      this.pods.delete(pod.uid);
    }
  }

  #count(what: string): void {
    this.actions.set(what, (this.actions.get(what) ?? 0) + 1);
  }

  async #act(pod: Pod): Promise<void> {
    const r = this.rnd();
    const containerId = pod.ctrId!;
    const token = `soak-${randomBytes(6).toString('hex')}`;
    if (r < 0.35) {
      this.#count('exec-sync');
      const res = await this.rpc.must('ExecSync', { containerId, cmd: ['echo', token], timeout: 10n }, { retry: 'never', timeoutMs: 30_000 });
      if (res.exitCode !== 0 || res.stdout.toString() !== `${token}\n`) {
        this.rpc.checkFailed('exec-sync', `exit ${res.exitCode}, stdout ${JSON.stringify(res.stdout.toString().slice(0, 200))}`);
      }
    } else if (r < 0.45) {
      this.#count('exec-sync-exit');
      const res = await this.rpc.must('ExecSync', { containerId, cmd: ['sh', '-c', 'echo oops >&2; exit 3'], timeout: 10n }, { retry: 'never', timeoutMs: 30_000 });
      if (res.exitCode !== 3 || res.stderr.toString() !== 'oops\n') {
        this.rpc.checkFailed('exec-sync', `exit ${res.exitCode} (want 3), stderr ${JSON.stringify(res.stderr.toString().slice(0, 200))}`);
      }
    } else if (r < 0.6) {
      this.#count('exec-spdy');
      const { url } = await this.rpc.must('Exec', { containerId, cmd: ['sh', '-c', 'cat; echo done'], stdin: true, stdout: true, stderr: true }, { retry: 'never' });
      // A session cut by a SIGKILL ends early rather than failing: the check throws, and the epoch tells provoked from real.
      await this.rpc.op('stream:exec-spdy', async () => {
        const res = await withTimeout(spdyExec(url, { stdin: Buffer.from(token), stderr: true }), 30_000, 'SPDY exec session');
        if (res.stdout.toString() !== `${token}done\n` || !res.error.includes('Success')) {
          throw new Error(`SPDY exec: stdout ${JSON.stringify(res.stdout.toString().slice(0, 200))}, status ${JSON.stringify(res.error.slice(0, 200))}`);
        }
      }, { retry: 'never' });
    } else if (r < 0.7) {
      this.#count('exec-ws');
      const { url } = await this.rpc.must('Exec', { containerId, cmd: ['sh', '-c', 'cat; echo done'], stdin: true, stdout: true, stderr: true }, { retry: 'never' });
      await this.rpc.op('stream:exec-ws', async () => {
        const res = await withTimeout(wsExec(url, { stdin: Buffer.from(token) }), 30_000, 'WebSocket exec session');
        if (res.stdout.toString() !== `${token}done\n` || !res.error.includes('Success') || res.closeCode !== 1000) {
          throw new Error(`WebSocket exec: stdout ${JSON.stringify(res.stdout.toString().slice(0, 200))}, status ${JSON.stringify(res.error.slice(0, 200))}, close ${res.closeCode}`);
        }
      }, { retry: 'never' });
    } else if (r < 0.85) {
      this.#count('log-reopen');
      await this.#rotateLog(pod);
    } else {
      this.#count('status');
      const [cs, ps] = await Promise.all([
        this.rpc.must('ContainerStatus', { containerId }),
        this.rpc.must('PodSandboxStatus', { podSandboxId: pod.podId! }),
      ]);
      if (cs.status?.state !== ContainerState.CONTAINER_RUNNING || ps.status?.state !== PodSandboxState.SANDBOX_READY) {
        this.rpc.checkFailed('status', `live pod ${pod.podId}: pod state ${ps.status?.state}, container ${containerId} state ${cs.status?.state} (${cs.status?.reason} ${cs.status?.message})`);
      }
    }
  }

  /** kubelet's rotation: rename the file, ReopenContainerLog, and conmon writes a fresh one. */
  async #rotateLog(pod: Pod): Promise<void> {
    const path = this.#logPath(pod);
    if (pod.rotating || !existsSync(path)) return;
    pod.rotating = true;
    const rotated = `${path}.${Date.now()}`;
    renameSync(path, rotated);
    try {
      await this.rpc.call('ReopenContainerLog', { containerId: pod.ctrId! }, { retry: 'provoked' });
      if (!existsSync(path)) this.rpc.checkFailed('log-reopen', `${path} not there after ReopenContainerLog`);
      const bad = readFileSync(rotated, 'utf8').split('\n').filter((l) => l !== '' && !CRI_LINE.test(l));
      if (bad.length > 0) this.rpc.checkFailed('log-format', `${bad.length} lines not in CRI format, e.g. ${JSON.stringify(bad[0]!.slice(0, 120))}`);
    } catch {
      if (!existsSync(path)) renameSync(rotated, path); // as kubelet: put it back
      return;
    } finally {
      pod.rotating = false;
    }
    rmSync(rotated, { force: true });
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_, reject) => (t = setTimeout(() => reject(new Error(`${what} did not end within ${ms / 1000} s`)), ms)))]).finally(() =>
    clearTimeout(t),
  );
}
