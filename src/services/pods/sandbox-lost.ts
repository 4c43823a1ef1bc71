import { ContainerEventType } from '../../gen/runtime/v1/api.js';
import { publishPodEvent } from './pod-events.js';
import type { PodsDeps } from './pods-deps.js';
import type { Sandbox } from './sandbox-store.js';

/**
 * A READY gVisor pod whose sandbox process is gone (OOM-killed, killed by hand) can
 * run nothing any more: it is marked NOTREADY (saved, STOPPED published), as recovery
 * would, so kubelet makes the pod anew instead of restarting containers into it. Asked
 * when a container of the pod exits and at PodSandboxStatus; a cheap check (a pid file
 * and /proc), nothing when the pod has no sandbox of its own.
 */
export async function noticeLostSandbox(deps: Pick<PodsDeps, 'host' | 'store' | 'mutex' | 'events' | 'containers' | 'log'>, sb: Sandbox): Promise<void> {
  const infra = sb.meta.sandboxInfra;
  if (!infra || sb.status.state !== 'ready' || deps.host.sandboxInfraAlive(infra)) return;
  await deps.mutex.run(sb.id, async () => {
    if (sb.status.state !== 'ready' || deps.store.get(sb.id) !== sb || deps.host.sandboxInfraAlive(infra)) return;
    sb.status = { ...sb.status, state: 'notready' };
    deps.store.releasePorts(sb.id);
    await deps.store.update(sb).catch((err: unknown) => deps.log.warn({ err, pod: sb.id }, 'cannot save pod record'));
    publishPodEvent(deps, sb, ContainerEventType.CONTAINER_STOPPED_EVENT);
    deps.log.warn({ pod: sb.id }, "the pod's gVisor sandbox is gone; pod marked NOTREADY");
  });
}
