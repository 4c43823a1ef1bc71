import { join } from 'node:path';
import { KeyedMutex } from '../../core/keyed-mutex.js';
import { failureReason, timed } from '../../core/metrics.js';
import { instrumentHost } from './instrumented-host.js';
import type { Deps } from '../deps.js';
import type { ContainersArea } from './api.js';
import type { ImagesArea } from '../images/api.js';
import type { HostFacts } from '../../oci/spec.js';
import type { PodsArea } from '../pods/api.js';
import { ExitWatcher } from '../../runtime/exit-watcher.js';
import { makeContainerStats, makeListContainerStats, makeStreamContainerStats, ContainerStatsSampler } from './container-stats.js';
import { makeContainerStatus } from './container-status.js';
import { ContainerStore } from './container-store.js';
import { realContainerHost, type ContainerHost } from './container-host.js';
import { runtimeFor, type ContainersDeps } from './containers-deps.js';
import { makeCreateContainer } from './create-container.js';
import { makeExecSync } from './exec-sync.js';
import { endUnstartedJoined, releaseRuntimeSoon, removeContainer, recordExit, stopContainer } from './lifecycle.js';
import { makeListContainers, makeStreamContainers } from './list-containers.js';
import { makeReopenContainerLog } from './log-reopen.js';
import { makeListMetricDescriptors, makeListPodSandboxMetrics, makeStreamPodSandboxMetrics } from './pod-metrics.js';
import { recoverContainers } from './recover.js';
import { makeRemoveContainer } from './remove-container.js';
import { makeStartContainer } from './start-container.js';
import { makeStopContainer } from './stop-container.js';
import { makeUpdateContainerResources } from './update-container-resources.js';
import { toCriStatus } from './to-cri.js';

/**
 * The container RPCs' shared deps over a host (the real one in the daemon, a fake in
 * unit tests): the store, the dirs under the roots, the exit watcher wired to
 * recordExit, the runtime per handler and the host facts read once.
 */
export function makeContainersDeps(
  base: Pick<Deps, 'config' | 'log' | 'events'> & Partial<Pick<Deps, 'metrics'>>,
  d: { images: ImagesArea; pods: PodsArea },
  bareHost: ContainerHost,
): ContainersDeps {
  const { config, log, events, metrics } = base;
  const host = instrumentHost(bareHost, metrics);
  const store = new ContainerStore(join(config.daemon.root, 'containers'));
  const dirs = {
    run: join(config.daemon.run_root, 'containers'),
    layers: join(config.daemon.root, 'containers', 'layers'),
    exits: join(config.daemon.run_root, 'containers', 'exits'),
    sockets: join(config.daemon.run_root, 'containers', 'attach'),
  };
  let facts: HostFacts | undefined;
  // The watcher's callback runs only once recovery starts it, after deps exists.
  const exits = new ExitWatcher(dirs.exits, log, (id, code) => {
    const c = store.get(id);
    if (c) {
      const wasExited = c.status.state === 'exited';
      c.exitHandled = recordExit(deps, c, code).then(() => {
        if (!wasExited && c.status.reason === 'OOMKilled') metrics?.containerOomKilled();
        return releaseRuntimeSoon(deps, c);
      });
    }
    // A removed container's monitor may write its exit file after the removal.
    else void exits.forget(id);
  });
  const deps: ContainersDeps = {
    config,
    log,
    images: d.images,
    pods: d.pods,
    store,
    mutex: new KeyedMutex(),
    events,
    exits,
    dirs,
    host,
    runtime: (handler) => runtimeFor(config, host, handler),
    runtimeOf: (c) => host.runtime(c.meta.runtimePath, c.meta.runtimeRoot, c.meta.runtimeArgs),
    facts: () => (facts ??= host.readHostFacts(config.runtime.restrict_oom_score_adj)),
  };
  return deps;
}

export async function createContainers(
  base: Pick<Deps, 'config' | 'log' | 'events'> & Partial<Pick<Deps, 'metrics'>>,
  d: { images: ImagesArea; pods: PodsArea },
): Promise<ContainersArea> {
  const deps = makeContainersDeps(base, d, realContainerHost);
  const { store, exits, dirs } = deps;
  const start = makeStartContainer(deps);
  base.metrics?.addSource({
    containersByState: () => ({ created: 0, running: 0, exited: 0, ...countBy(store.list(), (c) => c.status.state) }),
    // Every created or running container has its conmon; an exited one's has gone.
    conmonProcesses: () => store.list().filter((c) => c.status.state === 'created' || c.status.state === 'running').length,
  });
  const sampler = new ContainerStatsSampler(deps.host);
  const remove = makeRemoveContainer(deps);
  return {
    handlers: {
      CreateContainer: makeCreateContainer(deps),
      StartContainer: base.metrics
        ? (ctx, req) => timed(() => start(ctx, req), (sec, err) => base.metrics!.containerStart(sec, err === undefined ? undefined : failureReason(err)))
        : start,
      StopContainer: makeStopContainer(deps),
      RemoveContainer: async (ctx, req) => {
        const c = store.resolve(req.containerId);
        const res = await remove(ctx, req);
        if (c) sampler.forget(c.id);
        return res;
      },
      ContainerStatus: makeContainerStatus(deps),
      ListContainers: makeListContainers(deps),
      StreamContainers: makeStreamContainers(deps),
      UpdateContainerResources: makeUpdateContainerResources(deps),
      ReopenContainerLog: makeReopenContainerLog(deps),
      ExecSync: makeExecSync(deps),
      ContainerStats: makeContainerStats(deps, sampler),
      ListContainerStats: makeListContainerStats(deps, sampler),
      StreamContainerStats: makeStreamContainerStats(deps, sampler),
      ListMetricDescriptors: makeListMetricDescriptors(),
      ListPodSandboxMetrics: makeListPodSandboxMetrics(deps),
      StreamPodSandboxMetrics: makeStreamPodSandboxMetrics(deps),
    },
    recover: (ctx) => recoverContainers(ctx, deps),
    close: async () => exits.close(),
    async stopAllInPod(ctx, podId, timeoutSec) {
      await Promise.all(
        store.inPod(podId).map((c) => {
          const cfgTimeout = Math.max(0, Math.floor(timeoutSec));
          return deps.mutex.run(c.id, async () => {
            await stopContainer(ctx, deps, c, cfgTimeout);
            await endUnstartedJoined(ctx, deps, c);
          });
        }),
      );
    },
    async removeAllInPod(ctx, podId) {
      for (const c of store.inPod(podId)) {
        await deps.mutex.run(c.id, async () => {
          if (store.get(c.id)) await removeContainer(ctx, deps, c);
        });
        sampler.forget(c.id);
      }
    },
    statusesInPod(podId) {
      return store.inPod(podId).map(toCriStatus);
    },
    execTarget(id) {
      let c;
      try {
        c = store.resolve(id);
      } catch {
        return undefined;
      }
      if (!c) return undefined;
      return {
        id: c.id,
        podSandboxId: c.meta.podSandboxId,
        state: c.status.state,
        tty: c.config.tty,
        stdin: c.config.stdin,
        stdinOnce: c.config.stdinOnce,
        runtimePath: c.meta.runtimePath,
        runtimeRoot: c.meta.runtimeRoot,
        runtimeArgs: c.meta.runtimeArgs,
        runtimeType: c.meta.runtimeType,
        user: c.meta.user,
        attachSocketPath: join(dirs.sockets, c.id, 'attach'),
        ctlFifoPath: join(c.meta.bundleDir, 'ctl'),
        bundleDir: c.meta.bundleDir,
        pid: c.status.state === 'running' ? c.status.pid : 0,
      };
    },
    statsInPod: (_ctx, podId) => Promise.all(store.inPod(podId).filter((c) => c.status.state !== 'exited').map((c) => sampler.stats(c))),
  };
}

function countBy<T>(xs: readonly T[], key: (x: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of xs) out[key(x)] = (out[key(x)] ?? 0) + 1;
  return out;
}
