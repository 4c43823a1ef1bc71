import { join } from 'node:path';
import type { PodSandboxConfig } from '../../gen/runtime/v1/api.js';
import { KeyedMutex } from '../../core/keyed-mutex.js';
import type { Area, BaseDeps } from '../areas.js';
import type { ContainersArea } from '../containers/area.js';
import type { ImagesArea } from '../images/area.js';
import { CniConfigSource } from '../../cni/cni-config-loader.js';
import { CniManager } from '../../cni/cni-manager.js';
import { makeListPodSandbox, makeStreamPodSandboxes } from './list-pod-sandbox.js';
import { makeListPodSandboxStats, makePodSandboxStats, makeStreamPodSandboxStats, PodStatsSampler } from './pod-sandbox-stats.js';
import { makePodSandboxStatus } from './pod-sandbox-status.js';
import { realPodHost } from './pod-host.js';
import type { PodsDeps } from './pods-deps.js';
import { recoverSandboxes } from './recover.js';
import { makeRemovePodSandbox } from './remove-pod-sandbox.js';
import { makeRunPodSandbox } from './run-pod-sandbox.js';
import { SandboxStore } from './sandbox-store.js';
import { makeStopPodSandbox } from './stop-pod-sandbox.js';
import { makeUpdatePodSandboxResources } from './update-pod-sandbox-resources.js';

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
  readonly hostname: string;
  readonly hostsPath: string;
  readonly resolvConfPath: string;
  /** The pod's /dev/shm (a sized tmpfs), or undefined for host IPC. */
  readonly shmPath: string | undefined;
  /** Absolute cgroupfs path of the pod's cgroup parent, relative to a controller root (e.g. /kubepods/pod123). */
  readonly cgroupParent: string;
  readonly logDirectory: string;
  readonly ips: readonly string[];
}

/** Issue 4: sandboxes, namespaces, CNI, pod RPCs. */
export interface PodsArea extends Area {
  /** A sandbox by full id or unambiguous prefix. */
  get(id: string): SandboxView | undefined;
  attachContainers(containers: ContainersArea): void;
}

export async function createPods(base: BaseDeps, _deps: { images: ImagesArea }): Promise<PodsArea> {
  const { config, log } = base;
  let containers: ContainersArea | undefined;
  const store = new SandboxStore(join(config.daemon.root, 'pods'));
  const cni = new CniManager({
    source: new CniConfigSource(config.network.cni_conf_dir),
    binDirs: config.network.cni_bin_dirs,
    cacheDir: join(config.daemon.root, 'cni', 'results'),
    timeoutMs: config.network.plugin_timeout_seconds * 1000,
  });
  const deps: PodsDeps = {
    config,
    log,
    store,
    cni,
    host: realPodHost,
    mutex: new KeyedMutex(),
    containers: () => containers,
    podsRunDir: join(config.daemon.run_root, 'pods'),
  };
  const sampler = new PodStatsSampler();
  const remove = makeRemovePodSandbox(deps);
  return {
    handlers: {
      RunPodSandbox: makeRunPodSandbox(deps),
      StopPodSandbox: makeStopPodSandbox(deps),
      RemovePodSandbox: async (ctx, req) => {
        const res = await remove(ctx, req);
        sampler.forget(req.podSandboxId);
        return res;
      },
      PodSandboxStatus: makePodSandboxStatus(deps),
      ListPodSandbox: makeListPodSandbox(deps),
      StreamPodSandboxes: makeStreamPodSandboxes(deps),
      PodSandboxStats: makePodSandboxStats(deps, sampler),
      ListPodSandboxStats: makeListPodSandboxStats(deps, sampler),
      StreamPodSandboxStats: makeStreamPodSandboxStats(deps, sampler),
      UpdatePodSandboxResources: makeUpdatePodSandboxResources(deps),
    },
    recover: (ctx) => recoverSandboxes(ctx, deps),
    close: async () => {},
    get(id) {
      try {
        return store.resolve(id)?.view();
      } catch {
        return undefined; // ambiguous prefix
      }
    },
    attachContainers(c) {
      containers = c;
    },
  };
}
