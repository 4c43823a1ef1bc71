import type { DeepPartial } from '../gen/runtime/v1/api.js';
import { METHODS, type MethodName } from '../gen/methods.js';
import type { OpContext } from '../core/context.js';

export type { MethodName };
export type ReqOf<M extends MethodName> = ReturnType<(typeof METHODS)[M]['request']['decode']>;
export type ResOf<M extends MethodName> = ReturnType<(typeof METHODS)[M]['response']['decode']>;

/** Services may return partial messages: the wrapper fills defaults before encoding. */
export type UnaryHandler<M extends MethodName> = (ctx: OpContext, req: ReqOf<M>) => Promise<DeepPartial<ResOf<M>>>;
export type StreamHandler<M extends MethodName> = (
  ctx: OpContext,
  req: ReqOf<M>,
  send: (res: DeepPartial<ResOf<M>>) => Promise<void>,
) => Promise<void>;

export type Handler<M extends MethodName> = (typeof METHODS)[M]['responseStream'] extends true
  ? StreamHandler<M>
  : UnaryHandler<M>;

/** The implemented RPCs; any method missing here answers UNIMPLEMENTED. */
export type Handlers = { [M in MethodName]?: Handler<M> };

// Reads that kubelet calls constantly: logged at debug, not info (design: one line in
// and out per mutating RPC, list/status at debug).
export const QUIET_METHODS: ReadonlySet<MethodName> = new Set<MethodName>([
  'Version',
  'Status',
  'RuntimeConfig',
  'PodSandboxStatus',
  'ListPodSandbox',
  'StreamPodSandboxes',
  'ContainerStatus',
  'ListContainers',
  'StreamContainers',
  'ContainerStats',
  'ListContainerStats',
  'StreamContainerStats',
  'PodSandboxStats',
  'ListPodSandboxStats',
  'StreamPodSandboxStats',
  'ListMetricDescriptors',
  'ListPodSandboxMetrics',
  'StreamPodSandboxMetrics',
  'ListImages',
  'StreamImages',
  'ImageStatus',
  'ImageFsInfo',
]);

/** Methods that stay usable while recovery runs (they reveal no state). */
export const ALWAYS_READY: ReadonlySet<MethodName> = new Set<MethodName>(['Version']);

/** Stands in for a request whose bytes did not decode; the wrapper rejects it. */
export class UndecodableRequest {
  constructor(readonly reason: string) {}
}
