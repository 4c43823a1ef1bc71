import { join } from 'node:path';
import { KeyedMutex } from '../../core/keyed-mutex.js';
import { failureReason, NO_METRICS, timed, type Metrics } from '../../core/metrics.js';
import { inSpan } from '../../core/tracing.js';
import type { Deps } from '../deps.js';
import type { PodsArea } from './api.js';
import type { ContainersArea } from '../containers/api.js';
import type { ImagesArea } from '../images/api.js';
import { CniManager } from '../../cni/cni-manager.js';
import { makeListPodSandbox, makeStreamPodSandboxes } from './list-pod-sandbox.js';
import { makeListPodSandboxStats, makePodSandboxStats, makeStreamPodSandboxStats, PodStatsSampler } from './pod-sandbox-stats.js';
import { makePodSandboxStatus } from './pod-sandbox-status.js';
import { realPodHost, type PodNetwork } from './pod-host.js';
import type { PodsDeps } from './pods-deps.js';
import { recoverSandboxes } from './recover.js';
import { makeRemovePodSandbox } from './remove-pod-sandbox.js';
import { makeRunPodSandbox } from './run-pod-sandbox.js';
import { SandboxStore } from './sandbox-store.js';
import { makeStopPodSandbox } from './stop-pod-sandbox.js';
import { makeUpdatePodSandboxResources } from './update-pod-sandbox-resources.js';
import { statusOf } from './pod-sandbox-status.js';
import { noticeLostSandbox } from './sandbox-lost.js';



export async function createPods(
  base: Pick<Deps, 'config' | 'log' | 'cni' | 'events'> & Partial<Pick<Deps, 'metrics'>>,
  _deps: { images: ImagesArea },
): Promise<PodsArea> {
  const { metrics } = base;
  const { config, log } = base;
  let containers: ContainersArea | undefined;
  const store = new SandboxStore(join(config.daemon.root, 'pods'));
  const cni = new CniManager({
    source: base.cni,
    binDirs: config.network.cni_bin_dirs,
    cacheDir: join(config.daemon.root, 'cni', 'results'),
    // Read at each plugin call, so a reloaded network.plugin_timeout_seconds applies at once.
    get timeoutMs() {
      return config.network.plugin_timeout_seconds * 1000;
    },
  });
  const deps: PodsDeps = {
    config,
    log,
    store,
    events: base.events,
    cni: instrumentedNetwork(cni, metrics ?? NO_METRICS),
    host: realPodHost,
    mutex: new KeyedMutex(),
    containers: () => containers,
    podsRunDir: join(config.daemon.run_root, 'pods'),
  };
  const sampler = new PodStatsSampler(deps.host);
  const remove = makeRemovePodSandbox(deps);
  const run = makeRunPodSandbox(deps);
  const podStatus = makePodSandboxStatus(deps);
  metrics?.addSource({
    podsByState: () => {
      const out: Record<string, number> = { ready: 0, notready: 0 };
      for (const sb of store.list()) out[sb.status.state] = (out[sb.status.state] ?? 0) + 1;
      return out;
    },
  });
  return {
    handlers: {
      RunPodSandbox: metrics
        ? (ctx, req) => timed(() => run(ctx, req), (sec, err) => metrics.podStart(sec, err === undefined ? undefined : failureReason(err)))
        : run,
      StopPodSandbox: makeStopPodSandbox(deps),
      RemovePodSandbox: async (ctx, req) => {
        const res = await remove(ctx, req);
        sampler.forget(req.podSandboxId);
        return res;
      },
      PodSandboxStatus: async (ctx, req) => {
        let sb;
        try {
          sb = store.resolve(req.podSandboxId);
        } catch {
          // ambiguous: the handler says so
        }
        if (sb) await noticeLostSandbox(deps, sb);
        return podStatus(ctx, req);
      },
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
    async checkSandbox(id) {
      const sb = store.get(id);
      if (sb) await noticeLostSandbox(deps, sb);
    },
  };
}

/** The pod network with ADD (setUp) and DEL (tearDown) timed for the metrics and traced. */
function instrumentedNetwork(net: PodNetwork, metrics: Metrics): PodNetwork {
  return {
    network: () => net.network(),
    setUp: (ctx, req) =>
      inSpan(ctx, 'cni ADD', { 'cni.operation': 'ADD' }, () =>
        timed(() => net.setUp(ctx, req), (s, err) => metrics.cniCall('ADD', s, err === undefined)),
      ),
    tearDown: (ctx, podId) =>
      inSpan(ctx, 'cni DEL', { 'cni.operation': 'DEL' }, () =>
        timed(() => net.tearDown(ctx, podId), (s, err) => metrics.cniCall('DEL', s, err === undefined)),
      ),
    gc: (ctx, ids) => net.gc(ctx, ids),
    cachedPodIds: () => net.cachedPodIds(),
  };
}
