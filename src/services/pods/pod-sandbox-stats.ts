import type { OpContext } from '../../core/context.js';
import { notFound } from '../../core/errors.js';
import type { DeepPartial, PodSandboxStats, PodSandboxStatsFilter } from '../../gen/runtime/v1/api.js';
import type { InterfaceCounters } from '../../host/netns.js';
import type { StreamHandler, UnaryHandler } from '../../core/rpc.js';
import type { ContainersArea } from '../containers/api.js';
import { POD_IFNAME } from '../../cni/cni-manager.js';
import { filterSandboxes } from './list-pod-sandbox.js';
import type { PodHost } from './pod-host.js';
import type { PodsDeps } from './pods-deps.js';
import type { Sandbox } from './sandbox-store.js';

const u64 = (v: bigint | undefined) => (v === undefined ? undefined : { value: v });

/**
 * Pod stats from the pod's cgroup (cpu, memory, pids) and the interface counters of
 * its network namespace. usage_nano_cores needs two samples: the previous one per pod
 * is kept here, as cAdvisor does.
 */
export class PodStatsSampler {
  readonly #lastCpu = new Map<string, { ts: bigint; usage: bigint }>();
  readonly #host: Pick<PodHost, 'readCgroupStats' | 'netDevCounters'>;

  constructor(host: Pick<PodHost, 'readCgroupStats' | 'netDevCounters'>) {
    this.#host = host;
  }

  async stats(ctx: OpContext, sb: Sandbox, containers?: ContainersArea): Promise<DeepPartial<PodSandboxStats>> {
    const cg = this.#host.readCgroupStats(sb.meta.cgroupParent);
    let nanoCores: bigint | undefined;
    if (cg.cpuUsageNs !== undefined) {
      const prev = this.#lastCpu.get(sb.id);
      if (prev && cg.timestampNs > prev.ts && cg.cpuUsageNs >= prev.usage) {
        nanoCores = ((cg.cpuUsageNs - prev.usage) * 1_000_000_000n) / (cg.timestampNs - prev.ts);
      }
      this.#lastCpu.set(sb.id, { ts: cg.timestampNs, usage: cg.cpuUsageNs });
    }
    let ifaces: InterfaceCounters[] = [];
    if (sb.meta.netnsPath && sb.status.state === 'ready') {
      ifaces = await this.#host.netDevCounters(sb.meta.netnsPath, ctx.signal).catch(() => []);
    }
    const toUsage = (i: InterfaceCounters) => ({
      name: i.name,
      rxBytes: { value: i.rxBytes },
      rxErrors: { value: i.rxErrors },
      txBytes: { value: i.txBytes },
      txErrors: { value: i.txErrors },
    });
    const nonLo = ifaces.filter((i) => i.name !== 'lo');
    const def = nonLo.find((i) => i.name === POD_IFNAME);
    const available =
      cg.memoryLimitBytes !== undefined && cg.memoryWorkingSetBytes !== undefined && cg.memoryLimitBytes < 1n << 62n
        ? cg.memoryLimitBytes - cg.memoryWorkingSetBytes
        : undefined;
    return {
      attributes: { id: sb.id, metadata: sb.config.metadata, labels: sb.config.labels, annotations: sb.config.annotations },
      linux: {
        cpu: { timestamp: cg.timestampNs, usageCoreNanoSeconds: u64(cg.cpuUsageNs), usageNanoCores: u64(nanoCores), psi: cg.cpuPsi },
        memory: {
          timestamp: cg.timestampNs,
          workingSetBytes: u64(cg.memoryWorkingSetBytes),
          availableBytes: u64(available !== undefined && available >= 0n ? available : undefined),
          usageBytes: u64(cg.memoryUsageBytes),
          rssBytes: u64(cg.memoryRssBytes),
          pageFaults: u64(cg.pageFaults),
          majorPageFaults: u64(cg.majorPageFaults),
          psi: cg.memoryPsi,
        },
        io: cg.ioPsi ? { timestamp: cg.timestampNs, psi: cg.ioPsi } : undefined,
        network: sb.meta.netnsPath
          ? { timestamp: cg.timestampNs, defaultInterface: def ? toUsage(def) : undefined, interfaces: nonLo.map(toUsage) }
          : undefined,
        process: { timestamp: cg.timestampNs, processCount: u64(cg.processCount) },
        containers: containers?.statsInPod ? await containers.statsInPod(ctx, sb.id).catch(() => []) : [],
      },
    };
  }

  forget(id: string): void {
    this.#lastCpu.delete(id);
  }
}

export function makePodSandboxStats(deps: PodsDeps, sampler: PodStatsSampler): UnaryHandler<'PodSandboxStats'> {
  return async (ctx, req) => {
    const sb = deps.store.resolve(req.podSandboxId);
    if (!sb) throw notFound(`pod sandbox "${req.podSandboxId}" not found`);
    return { stats: await sampler.stats(ctx, sb, deps.containers()) };
  };
}

function selected(deps: PodsDeps, filter: PodSandboxStatsFilter | undefined): Sandbox[] {
  // Stats are for running pods, as kubelet's summary API wants them.
  return filterSandboxes(deps.store.list(), { id: filter?.id, labelSelector: filter?.labelSelector }).filter((sb) => sb.status.state === 'ready');
}

export function makeListPodSandboxStats(deps: PodsDeps, sampler: PodStatsSampler): UnaryHandler<'ListPodSandboxStats'> {
  return async (ctx, req) => ({ stats: await Promise.all(selected(deps, req.filter).map((sb) => sampler.stats(ctx, sb, deps.containers()))) });
}

export function makeStreamPodSandboxStats(deps: PodsDeps, sampler: PodStatsSampler): StreamHandler<'StreamPodSandboxStats'> {
  return async (ctx, req, send) => {
    const all = await Promise.all(selected(deps, req.filter).map((sb) => sampler.stats(ctx, sb, deps.containers())));
    for (let i = 0; i < all.length; i += 100) await send({ podSandboxStats: all.slice(i, i + 100) });
    if (all.length === 0) await send({ podSandboxStats: [] });
  };
}
