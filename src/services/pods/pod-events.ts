import type { ContainerEventType } from '../../gen/runtime/v1/api.js';
import { statusOf } from './pod-sandbox-status.js';
import type { PodsDeps } from './pods-deps.js';
import type { Sandbox } from './sandbox-store.js';

/**
 * Sandbox lifecycle events on GetContainerEvents (kubelet's evented PLEG): the
 * container_id is the sandbox id, pod_sandbox_status is filled, and so are the
 * statuses of the pod's containers at that moment (as containerd sends them).
 */
export function publishPodEvent(deps: Pick<PodsDeps, 'events' | 'containers'>, sb: Sandbox, type: ContainerEventType): void {
  deps.events.publish({
    containerId: sb.id,
    containerEventType: type,
    createdAt: BigInt(Date.now()) * 1_000_000n,
    podSandboxStatus: statusOf(sb),
    containersStatuses: deps.containers()?.statusesInPod(sb.id) ?? [],
  });
}
