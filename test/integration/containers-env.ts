// Shared set-up for the containers integration tests (not a test file itself): a
// loopback registry with a busybox image, a daemon using it, host-network pods (no CNI
// needed), and helpers to run a container to completion.
import { status } from '@grpc/grpc-js';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CriCallError } from '../../src/client/cri-client.js';
import {
  ContainerState,
  NamespaceMode,
  type ContainerConfig,
  type ContainerStatus,
  type DeepPartial,
  type PodSandboxConfig,
} from '../../src/gen/runtime/v1/api.js';
import { removeDir, startDaemon, tempDir, type TestDaemon } from '../helpers/daemon.js';
import { pushBusyboxImage, type ImageOptions, type PushedImage } from '../helpers/oci-image.js';
import { imagesConfigToml, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { RUNSC_HANDLER_TOML, TEST_HANDLER } from '../helpers/handler.js';

export interface Env {
  dir: string;
  logs: string;
  reg: TestRegistry;
  d: TestDaemon;
  image: PushedImage;
  cleanup(): Promise<void>;
}

export async function setUpEnv(imageOpts: ImageOptions = {}): Promise<Env> {
  const dir = tempDir('cricket-ctr-');
  const logs = join(dir, 'logs');
  mkdirSync(logs, { recursive: true });
  const reg = await startRegistry();
  let d: TestDaemon | undefined;
  let image: PushedImage;
  try {
    image = await pushBusyboxImage(reg.host, 'ctr/busybox', 'v1', imageOpts);
    const toml = `${imagesConfigToml(dir, reg.host)}\n[logs]\nallowed_roots = [${JSON.stringify(logs)}]\n${RUNSC_HANDLER_TOML}`;
    const ddir = join(dir, 'daemon');
    mkdirSync(ddir);
    d = await startDaemon({ dir: ddir, configToml: toml });
    await d.client.call('PullImage', { image: { image: image.ref } });
  } catch (err) {
    await d?.cleanup();
    await reg.stop();
    removeDir(dir);
    throw err;
  }
  return envOf(dir, logs, reg, d, image);
}

function envOf(dir: string, logs: string, reg: TestRegistry, d: TestDaemon, image: PushedImage): Env {
  const env: Env = {
    dir,
    logs,
    reg,
    d,
    image,
    async cleanup() {
      // env.d, not d: a restart test swaps in a new daemon.
      const daemon = env.d;
      try {
        for (const p of (await daemon.client.call('ListPodSandbox', {})).items) {
          await daemon.client.call('StopPodSandbox', { podSandboxId: p.id }).catch(() => {});
          await daemon.client.call('RemovePodSandbox', { podSandboxId: p.id }).catch(() => {});
        }
      } catch {
        // daemon gone
      }
      await daemon.cleanup();
      if (daemon !== d) await d.cleanup();
      await reg.stop();
      removeDir(dir);
    },
  };
  return env;
}


let podSeq = 0;
export function podConfig(env: Env, name = `pod${++podSeq}`, extra: DeepPartial<PodSandboxConfig> = {}): DeepPartial<PodSandboxConfig> {
  const uid = `uid-${name}-${Date.now()}`;
  return {
    metadata: { name, namespace: 'ctr-test', uid, attempt: 0 },
    hostname: name,
    logDirectory: join(env.logs, `ctr-test_${name}_${uid}`),
    labels: { suite: 'containers' },
    linux: { securityContext: { namespaceOptions: { network: NamespaceMode.NODE, pid: NamespaceMode.CONTAINER, ipc: NamespaceMode.POD } } },
    ...extra,
  };
}

export async function runPod(env: Env, name?: string, extra?: DeepPartial<PodSandboxConfig>): Promise<{ id: string; config: DeepPartial<PodSandboxConfig> }> {
  const config = podConfig(env, name, extra);
  const { podSandboxId } = await env.d.client.call('RunPodSandbox', { config, runtimeHandler: TEST_HANDLER });
  return { id: podSandboxId, config };
}

let ctrSeq = 0;
export function ctrConfig(env: Env, cmd: string[], extra: DeepPartial<ContainerConfig> = {}): DeepPartial<ContainerConfig> {
  const name = `c${++ctrSeq}`;
  return { metadata: { name, attempt: 0 }, image: { image: env.image.ref }, command: cmd, logPath: `${name}/0.log`, ...extra };
}

export async function create(env: Env, pod: { id: string; config: DeepPartial<PodSandboxConfig> }, cfg: DeepPartial<ContainerConfig>): Promise<string> {
  const r = await env.d.client.call('CreateContainer', { podSandboxId: pod.id, config: cfg, sandboxConfig: pod.config });
  return r.containerId;
}

export async function createStart(env: Env, pod: { id: string; config: DeepPartial<PodSandboxConfig> }, cfg: DeepPartial<ContainerConfig>): Promise<string> {
  const id = await create(env, pod, cfg);
  await env.d.client.call('StartContainer', { containerId: id });
  return id;
}

/** Polls ContainerStatus until the state is reached (a wait, not a timing assertion). */
export async function waitState(env: Env, id: string, state: ContainerState, maxMs = 30_000): Promise<ContainerStatus> {
  const deadline = Date.now() + maxMs;
  for (;;) {
    const s = (await env.d.client.call('ContainerStatus', { containerId: id })).status!;
    if (s.state === state) return s;
    if (Date.now() > deadline) throw new Error(`container ${id} stayed in state ${s.state}, wanted ${state}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export const waitExited = (env: Env, id: string, maxMs?: number) => waitState(env, id, ContainerState.CONTAINER_EXITED, maxMs);

/**
 * Everything a container leaves under the daemon's dirs: bundles, layers, records. A
 * removal's trees renamed aside (`.removed-*`, deleted in the background by the daemon)
 * are waited for, up to 30 s; one still there then is reported as left over.
 */
export async function leftovers(env: Env, id?: string): Promise<string[]> {
  for (let i = 0; i < 3000 && listLeftovers(env, id).some((p) => p.includes('/.removed-')); i++) await new Promise((r) => setTimeout(r, 10));
  return listLeftovers(env, id);
}

function listLeftovers(env: Env, id?: string): string[] {
  const out: string[] = [];
  const check = (dir: string, skip: string[] = []) => {
    if (!existsSync(dir)) return;
    for (const n of readdirSync(dir)) if (!skip.includes(n) && (!id || n.startsWith(id) || n.startsWith(`.removed-${id}`))) out.push(join(dir, n));
  };
  check(join(env.d.runRoot, 'containers'), ['exits', 'attach']);
  check(join(env.d.runRoot, 'containers', 'exits'));
  check(join(env.d.root, 'containers', 'layers'));
  check(join(env.d.root, 'containers', 'meta'));
  check(join(env.d.root, 'containers', 'status'));
  return out;
}

export function isCode(code: status) {
  return (e: unknown) => e instanceof CriCallError && e.code === code;
}

/** A CRI log file's messages, without the timestamp, stream and tag of each line. */
export const logText = (path: string) =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(' ').slice(3).join(' '))
    .join('\n');
