import type { OpContext } from '../../core/context.js';
import type { ContainerStats, ContainerStatus, DeepPartial } from '../../gen/runtime/v1/api.js';
import type { Area } from '../areas.js';

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
  /** Global runtime flags after --root, and whether the handler is gVisor ('sandbox'). */
  readonly runtimeArgs: readonly string[];
  readonly runtimeType: 'oci' | 'sandbox';
  /** The container's user (uid, gid, groups), for runtimes whose exec does not take it from the spec. */
  readonly user: { readonly uid: number; readonly gid: number; readonly additionalGids: readonly number[] };
  /** conmon's attach socket (SOCK_SEQPACKET) and control fifo (resize). */
  readonly attachSocketPath: string;
  readonly ctlFifoPath: string;
  /** The container's OCI bundle dir (conmon's files; exec pid files), removed with the container. */
  readonly bundleDir: string;
  /** The container's main process (host pid) while running, else 0. */
  readonly pid?: number;
  readonly stdinOnce?: boolean;
}

/** Issue 5: OCI spec, conmon + runc, logs, exec-sync, stats, events. */
export interface ContainersArea extends Area {
  /** StopPodSandbox: stop every container of the pod (each with its grace period capped by timeoutSec). */
  stopAllInPod(ctx: OpContext, podId: string, timeoutSec: number): Promise<void>;
  /** RemovePodSandbox: force-remove every container of the pod. */
  removeAllInPod(ctx: OpContext, podId: string): Promise<void>;
  /** The CRI status of every container in the pod, for the pod's own events (kubelet's evented PLEG). */
  statusesInPod(podId: string): DeepPartial<ContainerStatus>[];
  /** A container by full id or unambiguous prefix, for streaming. */
  execTarget(id: string): ContainerExecTarget | undefined;
  /**
   * Optional, for PodSandboxStats/ListPodSandboxStats (kubelet's CRI stats provider
   * reads container stats from there): the stats of every container in the pod.
   */
  statsInPod?(ctx: OpContext, podId: string): Promise<DeepPartial<ContainerStats>[]>;
}
