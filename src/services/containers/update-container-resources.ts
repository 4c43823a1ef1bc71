import { failedPrecondition, invalidArgument, notFound } from '../../core/errors.js';
import type { UnaryHandler } from '../../core/rpc.js';
import { LinuxContainerResources } from '../../gen/runtime/v1/api.js';
import { convertResources } from '../../oci/resources.js';
import { toBase64 } from '../../store/proto-base64.js';
import type { ContainersDeps } from './containers-deps.js';

/** UpdateContainerResources: `runc update` on a live container, then remembered for status. */
export function makeUpdateContainerResources(deps: ContainersDeps): UnaryHandler<'UpdateContainerResources'> {
  return async (ctx, req) => {
    const c = deps.store.resolve(req.containerId);
    if (!c) throw notFound(`container "${req.containerId}" not found`);
    if (!req.linux) throw invalidArgument('UpdateContainerResources needs linux resources');
    const { resources } = convertResources(req.linux, deps.facts());
    await deps.mutex.run(c.id, async () => {
      if (c.status.state === 'exited') throw failedPrecondition(`container ${c.id} has exited; its resources cannot change`);
      const update: Record<string, unknown> = {};
      if (resources.cpu) update['cpu'] = resources.cpu;
      if (resources.memory) update['memory'] = resources.memory;
      if (resources.hugepageLimits) update['hugepageLimits'] = resources.hugepageLimits;
      if (resources.unified) update['unified'] = resources.unified;
      if (c.meta.runtimeType === 'sandbox') {
        // runsc has no `update`: the limits go into the container's cgroup. A container
        // with a gVisor sandbox of its own (older pods) has all its processes there, so
        // they bound it; one that joined its pod's sandbox has none there (the pod's
        // cgroup bounds the sandbox, see runtime/handler.ts), so they are recorded and
        // reported only. What only the runc path applies (cpuset, hugepages, unified) is refused.
        if (resources.cpu?.cpus || resources.cpu?.mems || resources.hugepageLimits?.length || Object.keys(resources.unified ?? {}).length) {
          throw invalidArgument(`container ${c.id} runs on gVisor: only CPU shares, quota, period and the memory limit can be updated`);
        }
        await deps.host.applyLimits(c.meta.cgroupsPath, {
          cpuShares: resources.cpu?.shares !== undefined ? BigInt(resources.cpu.shares) : undefined,
          cpuQuota: resources.cpu?.quota !== undefined ? BigInt(resources.cpu.quota) : undefined,
          cpuPeriod: resources.cpu?.period !== undefined ? BigInt(resources.cpu.period) : undefined,
          memoryLimitBytes: resources.memory?.limit !== undefined ? BigInt(resources.memory.limit) : undefined,
        });
      } else {
        await deps.runtimeOf(c).update(ctx, c.id, update);
      }
      c.status = { ...c.status, resources: toBase64(LinuxContainerResources, req.linux!) };
      await deps.store.update(c);
    });
    ctx.log.info({ container: c.id }, 'container resources updated');
    return {};
  };
}
