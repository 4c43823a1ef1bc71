import { notFound } from '../../core/errors.js';
import { LinuxContainerResources } from '../../gen/runtime/v1/api.js';
import type { UnaryHandler } from '../../core/rpc.js';
import { toBase64 } from '../../store/proto-base64.js';
import type { PodsDeps } from './pods-deps.js';

/**
 * UpdatePodSandboxResources: kubelet tells the runtime the pod's new overall
 * resources after an in-place resize. kubelet itself resizes the pod cgroup; the
 * runtime records the values (shown in verbose status, offered to plugins).
 */
export function makeUpdatePodSandboxResources(deps: PodsDeps): UnaryHandler<'UpdatePodSandboxResources'> {
  return async (ctx, req) => {
    const found = deps.store.resolve(req.podSandboxId);
    if (!found) throw notFound(`pod sandbox "${req.podSandboxId}" not found`);
    await deps.mutex.run(found.id, async () => {
      const sb = deps.store.resolve(found.id);
      if (!sb) throw notFound(`pod sandbox "${req.podSandboxId}" not found`);
      sb.status = {
        ...sb.status,
        resources: req.resources ? toBase64(LinuxContainerResources, req.resources) : sb.status.resources,
        overhead: req.overhead ? toBase64(LinuxContainerResources, req.overhead) : sb.status.overhead,
      };
      await deps.store.update(sb);
    });
    ctx.log.debug({ pod: found.id }, 'pod sandbox resources recorded');
    return {};
  };
}
