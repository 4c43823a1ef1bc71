import {
  ContainerState,
  MountPropagation,
  type Container as CriContainer,
  type ContainerEventResponse,
  type ContainerEventType,
  type ContainerStatus,
  type DeepPartial,
} from '../../gen/runtime/v1/api.js';
import { signalFromName } from '../../oci/stop-signal.js';
import type { Container } from './container-store.js';
import type { ContainersDeps } from './containers-deps.js';

export function criState(c: Container): ContainerState {
  switch (c.status.state) {
    case 'created':
      return ContainerState.CONTAINER_CREATED;
    case 'running':
      return ContainerState.CONTAINER_RUNNING;
    case 'exited':
      return ContainerState.CONTAINER_EXITED;
    default:
      return ContainerState.CONTAINER_UNKNOWN;
  }
}

export function toCriContainer(c: Container): DeepPartial<CriContainer> {
  return {
    id: c.id,
    podSandboxId: c.meta.podSandboxId,
    metadata: { name: c.meta.name, attempt: c.meta.attempt },
    image: { image: c.meta.imageName, annotations: c.config.image?.annotations ?? {}, userSpecifiedImage: c.config.image?.image ?? '' },
    imageRef: c.meta.imageId,
    imageId: c.meta.imageId,
    state: criState(c),
    createdAt: BigInt(c.meta.createdAt),
    labels: c.config.labels,
    annotations: c.config.annotations,
  };
}

export function toCriStatus(c: Container): DeepPartial<ContainerStatus> {
  const s = c.status;
  return {
    id: c.id,
    metadata: { name: c.meta.name, attempt: c.meta.attempt },
    state: criState(c),
    createdAt: BigInt(c.meta.createdAt),
    startedAt: BigInt(s.startedAt),
    finishedAt: BigInt(s.finishedAt),
    exitCode: s.exitCode,
    image: { image: c.meta.imageName, annotations: c.config.image?.annotations ?? {}, userSpecifiedImage: c.config.image?.image ?? '' },
    imageRef: c.meta.imageId,
    imageId: c.meta.imageId,
    reason: s.reason,
    message: s.message,
    labels: c.config.labels,
    annotations: c.config.annotations,
    mounts: c.config.mounts.map((m) => ({
      containerPath: m.containerPath,
      hostPath: m.hostPath,
      readonly: m.readonly,
      selinuxRelabel: m.selinuxRelabel,
      propagation: m.propagation ?? MountPropagation.PROPAGATION_PRIVATE,
      recursiveReadOnly: m.recursiveReadOnly,
      ...(m.image ? { image: m.image, readonly: true } : {}),
    })),
    logPath: c.meta.logPath,
    resources: { linux: c.resources },
    user: {
      linux: {
        uid: BigInt(c.meta.user.uid),
        gid: BigInt(c.meta.user.gid),
        // Exactly the process's groups: the kernel keeps them sorted and unique (setgroups).
        supplementalGroups: [...new Set([c.meta.user.gid, ...c.meta.user.additionalGids])].sort((a, b) => a - b).map(BigInt),
      },
    },
    stopSignal: signalFromName(c.meta.stopSignal),
  };
}

export function containerEvent(deps: ContainersDeps, c: Container, type: ContainerEventType): DeepPartial<ContainerEventResponse> {
  return {
    containerId: c.id,
    containerEventType: type,
    createdAt: BigInt(Date.now()) * 1_000_000n,
    // kubelet's evented PLEG takes the pod's state from the event itself: the pod's
    // status and every container of the pod as they are now (a deleted one is gone).
    podSandboxStatus: deps.pods.status(c.meta.podSandboxId),
    containersStatuses: deps.store.inPod(c.meta.podSandboxId).map(toCriStatus),
  };
}
