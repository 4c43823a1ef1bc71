import type { MethodName } from '../core/rpc.js';

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
