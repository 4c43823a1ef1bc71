import type { OpContext } from '../../core/context.js';
import type { Area, BaseDeps } from '../areas.js';
import type { ImagesArea } from '../images/area.js';
import type { PodsArea } from '../pods/area.js';

/** What streaming needs to exec into or attach to a container. */
export interface ContainerExecTarget {
  readonly id: string;
  readonly podSandboxId: string;
  readonly state: 'created' | 'running' | 'exited' | 'unknown';
  readonly tty: boolean;
  readonly stdin: boolean;
  /** OCI runtime binary and its --root, for `runc exec`. */
  readonly runtimePath: string;
  readonly runtimeRoot: string;
  /** conmon's attach socket (SOCK_SEQPACKET) and control fifo (resize). */
  readonly attachSocketPath: string;
  readonly ctlFifoPath: string;
}

/** Issue 5: OCI spec, conmon + runc, logs, exec-sync, stats, events. */
export interface ContainersArea extends Area {
  /** StopPodSandbox: stop every container of the pod (each with its grace period capped by timeoutSec). */
  stopAllInPod(ctx: OpContext, podId: string, timeoutSec: number): Promise<void>;
  /** RemovePodSandbox: force-remove every container of the pod. */
  removeAllInPod(ctx: OpContext, podId: string): Promise<void>;
  /** A container by full id or unambiguous prefix, for streaming. */
  execTarget(id: string): ContainerExecTarget | undefined;
}

export async function createContainers(_base: BaseDeps, _deps: { images: ImagesArea; pods: PodsArea }): Promise<ContainersArea> {
  return {
    handlers: {},
    recover: async () => {},
    close: async () => {},
    stopAllInPod: async () => {},
    removeAllInPod: async () => {},
    execTarget: () => undefined,
  };
}
