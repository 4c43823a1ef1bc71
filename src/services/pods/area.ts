import { join } from 'node:path';
import { KeyedMutex } from '../../core/keyed-mutex.js';
import type { Deps } from '../deps.js';
import type { PodsArea } from './api.js';
import type { ContainersArea } from '../containers/api.js';
import type { ImagesArea } from '../images/api.js';
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
import { statusOf } from './pod-sandbox-status.js';



export async function createPods(base: Pick<Deps, 'config' | 'log' | 'cni' | 'events'>, _deps: { images: ImagesArea }): Promise<PodsArea> {
  const { config, log } = base;
  let containers: ContainersArea | undefined;
  const store = new SandboxStore(join(config.daemon.root, 'pods'));
  const cni = new CniManager({
    source: base.cni,
    binDirs: config.network.cni_bin_dirs,
    cacheDir: join(config.daemon.root, 'cni', 'results'),
    timeoutMs: config.network.plugin_timeout_seconds * 1000,
  });
  const deps: PodsDeps = {
    config,
    log,
    store,
    events: base.events,
    cni,
    host: realPodHost,
    mutex: new KeyedMutex(),
    containers: () => containers,
    podsRunDir: join(config.daemon.run_root, 'pods'),
  };
  const sampler = new PodStatsSampler(deps.host);
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
    status(id) {
      const sb = store.get(id);
      return sb ? statusOf(sb) : undefined;
    },
    attachContainers(c) {
      containers = c;
    },
  };
}
