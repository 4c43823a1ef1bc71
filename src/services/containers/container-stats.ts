import { join } from 'node:path';
import { notFound } from '../../core/errors.js';
import type { ContainerStats, ContainerStatsFilter, DeepPartial } from '../../gen/runtime/v1/api.js';
import type { StreamHandler, UnaryHandler } from '../../core/rpc.js';
import type { ContainerHost } from './container-host.js';
import type { Container } from './container-store.js';
import type { ContainersDeps } from './containers-deps.js';
import { filterContainers } from './list-containers.js';

const u64 = (v: bigint | undefined) => (v === undefined ? undefined : { value: v });

/**
 * Per-container stats from its cgroup leaf (named by the id) and its writable layer.
 * usage_nano_cores needs two samples; the previous one is kept per container.
 */
export class ContainerStatsSampler {
  readonly #lastCpu = new Map<string, { ts: bigint; usage: bigint }>();
  readonly #host: Pick<ContainerHost, 'readCgroupStats' | 'readSwapUsage' | 'diskUsage' | 'sandboxContainerUsage'>;

  constructor(host: Pick<ContainerHost, 'readCgroupStats' | 'readSwapUsage' | 'diskUsage' | 'sandboxContainerUsage'>) {
    this.#host = host;
  }

  async stats(c: Container): Promise<DeepPartial<ContainerStats>> {
    let cg = this.#host.readCgroupStats(c.meta.cgroupsPath);
    if (c.meta.joinedSandbox !== undefined) {
      // Its processes run in the pod's gVisor sandbox, whose kernel counts them per container.
      const u = await this.#host.sandboxContainerUsage({ runtimePath: c.meta.runtimePath, runtimeRoot: c.meta.runtimeRoot, runtimeArgs: c.meta.runtimeArgs, id: c.id });
      if (u) {
        cg = {
          ...cg,
          cpuUsageNs: u.cpuUsageNs ?? cg.cpuUsageNs,
          memoryUsageBytes: u.memoryUsageBytes ?? cg.memoryUsageBytes,
          memoryWorkingSetBytes: u.memoryUsageBytes ?? cg.memoryWorkingSetBytes,
          processCount: u.processCount ?? cg.processCount,
        };
      }
    }
    let nanoCores: bigint | undefined;
    if (cg.cpuUsageNs !== undefined) {
      const prev = this.#lastCpu.get(c.id);
      if (prev && cg.timestampNs > prev.ts && cg.cpuUsageNs >= prev.usage) {
        nanoCores = ((cg.cpuUsageNs - prev.usage) * 1_000_000_000n) / (cg.timestampNs - prev.ts);
      }
      this.#lastCpu.set(c.id, { ts: cg.timestampNs, usage: cg.cpuUsageNs });
    }
    const du = await this.#host.diskUsage(join(c.meta.layerDir, 'upper'));
    const limit = cg.memoryLimitBytes;
    const available = limit !== undefined && limit < 1n << 62n && cg.memoryWorkingSetBytes !== undefined ? limit - cg.memoryWorkingSetBytes : undefined;
    return {
      attributes: { id: c.id, metadata: { name: c.meta.name, attempt: c.meta.attempt }, labels: c.config.labels, annotations: c.config.annotations },
      cpu: { timestamp: cg.timestampNs, usageCoreNanoSeconds: u64(cg.cpuUsageNs ?? 0n), usageNanoCores: u64(nanoCores), psi: cg.cpuPsi },
      memory: {
        timestamp: cg.timestampNs,
        workingSetBytes: u64(cg.memoryWorkingSetBytes ?? 0n),
        availableBytes: u64(available !== undefined && available >= 0n ? available : undefined),
        usageBytes: u64(cg.memoryUsageBytes),
        rssBytes: u64(cg.memoryRssBytes),
        pageFaults: u64(cg.pageFaults),
        majorPageFaults: u64(cg.majorPageFaults),
        psi: cg.memoryPsi,
      },
      io: cg.ioPsi ? { timestamp: cg.timestampNs, psi: cg.ioPsi } : undefined,
      writableLayer: { timestamp: cg.timestampNs, fsId: { mountpoint: c.meta.layerDir }, usedBytes: u64(du.bytes), inodesUsed: u64(du.inodes) },
      swap: { timestamp: cg.timestampNs, swapUsageBytes: u64(this.#host.readSwapUsage(c.meta.cgroupsPath)) },
    };
  }

  forget(id: string): void {
    this.#lastCpu.delete(id);
  }
}

function selected(deps: ContainersDeps, f: ContainerStatsFilter | undefined): Container[] {
  // Stats are for containers that exist in the runtime (created or running), as kubelet lists them.
  return filterContainers(deps.store.list(), f ? { id: f.id, podSandboxId: f.podSandboxId, labelSelector: f.labelSelector, state: undefined } : undefined).filter(
    (c) => c.status.state !== 'exited',
  );
}

export function makeContainerStats(deps: ContainersDeps, s: ContainerStatsSampler): UnaryHandler<'ContainerStats'> {
  return async (_ctx, req) => {
    const c = deps.store.resolve(req.containerId);
    if (!c) throw notFound(`container "${req.containerId}" not found`);
    return { stats: await s.stats(c) };
  };
}

export function makeListContainerStats(deps: ContainersDeps, s: ContainerStatsSampler): UnaryHandler<'ListContainerStats'> {
  return async (_ctx, req) => ({ stats: await Promise.all(selected(deps, req.filter).map((c) => s.stats(c))) });
}

export function makeStreamContainerStats(deps: ContainersDeps, s: ContainerStatsSampler): StreamHandler<'StreamContainerStats'> {
  return async (_ctx, req, send) => {
    const all = await Promise.all(selected(deps, req.filter).map((c) => s.stats(c)));
    for (let i = 0; i < all.length; i += 100) await send({ containerStats: all.slice(i, i + 100) });
    if (all.length === 0) await send({ containerStats: [] });
  };
}
