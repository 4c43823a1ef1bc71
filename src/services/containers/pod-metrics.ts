import { MetricType, type DeepPartial, type Metric, type PodSandboxMetrics } from '../../gen/runtime/v1/api.js';
import type { StreamHandler, UnaryHandler } from '../../core/rpc.js';
import type { ContainersDeps } from './containers-deps.js';

/*
 * cAdvisor-named metrics kubelet asks for when it takes metrics from the runtime
 * (PodAndContainerStatsFromCRI). Label keys follow cAdvisor: container, pod,
 * namespace, id, image, name.
 */
const LABELS = ['container', 'id', 'image', 'name', 'namespace', 'pod'];
const DESCRIPTORS: { name: string; help: string; type: MetricType; seconds?: boolean }[] = [
  { name: 'container_cpu_usage_seconds_total', help: 'Cumulative cpu time consumed in seconds.', type: MetricType.COUNTER, seconds: true },
  { name: 'container_memory_usage_bytes', help: 'Current memory usage in bytes, including all memory regardless of when it was accessed', type: MetricType.GAUGE },
  { name: 'container_memory_working_set_bytes', help: 'Current working set in bytes.', type: MetricType.GAUGE },
  { name: 'container_memory_rss', help: 'Size of RSS in bytes.', type: MetricType.GAUGE },
  { name: 'container_memory_failures_total', help: 'Cumulative count of memory allocation failures.', type: MetricType.COUNTER },
  { name: 'container_processes', help: 'Number of processes running inside the container.', type: MetricType.GAUGE },
  { name: 'container_spec_memory_limit_bytes', help: 'Memory limit for the container.', type: MetricType.GAUGE },
  { name: 'container_last_seen', help: 'Last time a container was seen by the exporter', type: MetricType.GAUGE },
];

export function makeListMetricDescriptors(): UnaryHandler<'ListMetricDescriptors'> {
  return async () => ({ descriptors: DESCRIPTORS.map((d) => ({ name: d.name, help: d.help, labelKeys: LABELS })) });
}

function podMetrics(deps: ContainersDeps): DeepPartial<PodSandboxMetrics>[] {
  const byPod = new Map<string, DeepPartial<PodSandboxMetrics>>();
  for (const c of deps.store.list()) {
    if (c.status.state !== 'running') continue;
    const pod = deps.pods.get(c.meta.podSandboxId);
    const cg = deps.host.readCgroupStats(c.meta.cgroupsPath);
    const labels = [c.meta.name, c.meta.cgroupsPath, c.meta.imageName, c.id, pod?.config.metadata?.namespace ?? '', pod?.config.metadata?.name ?? ''];
    const values: Record<string, bigint | undefined> = {
      container_cpu_usage_seconds_total: cg.cpuUsageNs === undefined ? undefined : cg.cpuUsageNs / 1_000_000_000n,
      container_memory_usage_bytes: cg.memoryUsageBytes,
      container_memory_working_set_bytes: cg.memoryWorkingSetBytes,
      container_memory_rss: cg.memoryRssBytes,
      container_memory_failures_total: cg.pageFaults,
      container_processes: cg.processCount,
      container_spec_memory_limit_bytes: cg.memoryLimitBytes,
      container_last_seen: cg.timestampNs / 1_000_000_000n,
    };
    const metrics: DeepPartial<Metric>[] = DESCRIPTORS.filter((d) => values[d.name] !== undefined).map((d) => ({
      name: d.name,
      timestamp: cg.timestampNs,
      metricType: d.type,
      labelValues: labels,
      value: { value: values[d.name]! },
    }));
    const entry = byPod.get(c.meta.podSandboxId) ?? { podSandboxId: c.meta.podSandboxId, metrics: [], containerMetrics: [] };
    entry.containerMetrics!.push({ containerId: c.id, metrics });
    byPod.set(c.meta.podSandboxId, entry);
  }
  return [...byPod.values()];
}

export function makeListPodSandboxMetrics(deps: ContainersDeps): UnaryHandler<'ListPodSandboxMetrics'> {
  return async () => ({ podMetrics: podMetrics(deps) });
}

export function makeStreamPodSandboxMetrics(deps: ContainersDeps): StreamHandler<'StreamPodSandboxMetrics'> {
  return async (_ctx, _req, send) => {
    const all = podMetrics(deps);
    for (let i = 0; i < all.length; i += 100) await send({ podSandboxMetrics: all.slice(i, i + 100) });
    if (all.length === 0) await send({ podSandboxMetrics: [] });
  };
}
