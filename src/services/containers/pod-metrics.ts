import { MetricType, type DeepPartial, type Metric, type PodSandboxMetrics } from '../../gen/runtime/v1/api.js';
import type { StreamHandler, UnaryHandler } from '../../core/rpc.js';
import type { CgroupMetrics } from '../../host/cgroup-metrics.js';
import type { CgroupStats } from '../../host/cgroup-stats.js';
import type { InterfaceCounters } from '../../host/netns.js';
import type { OpContext } from '../../core/context.js';
import type { Container } from './container-store.js';
import type { ContainersDeps } from './containers-deps.js';

/*
 * cAdvisor-named metrics for kubelet's CRI-based stats (PodAndContainerStatsFromCRI):
 * kubelet asks ListMetricDescriptors once, then turns each ListPodSandboxMetrics
 * Metric into a Prometheus sample on /metrics/cadvisor with the descriptor's label
 * keys, dropping any whose label values do not match them in number. Names, help and
 * extra labels follow cAdvisor (cpu="total", failure_type/scope, interface); the base
 * labels are the ones kubelet's cAdvisor output carries: container, id, image, name,
 * namespace, pod. Pod-level metrics (network, seen from the pod's namespace) carry
 * container="POD", as cAdvisor reports them on the infra container.
 *
 * The CRI carries values as uint64: seconds are whole seconds (CRI-O does the same),
 * so sub-second CPU time shows only in the CRI stats (ContainerStats, in ns).
 */
const BASE = ['container', 'id', 'image', 'name', 'namespace', 'pod'];
type Kind = 'counter' | 'gauge';
interface Descriptor {
  name: string;
  help: string;
  kind: Kind;
  extra?: string[];
}

const d = (name: string, kind: Kind, help: string, extra?: string[]): Descriptor => ({ name, kind, help, ...(extra ? { extra } : {}) });
const IFACE = ['interface'];

const DESCRIPTORS: readonly Descriptor[] = [
  d('container_cpu_usage_seconds_total', 'counter', 'Cumulative cpu time consumed in seconds.', ['cpu']),
  d('container_cpu_user_seconds_total', 'counter', 'Cumulative user cpu time consumed in seconds.'),
  d('container_cpu_system_seconds_total', 'counter', 'Cumulative system cpu time consumed in seconds.'),
  d('container_cpu_cfs_periods_total', 'counter', 'Number of elapsed enforcement period intervals.'),
  d('container_cpu_cfs_throttled_periods_total', 'counter', 'Number of throttled period intervals.'),
  d('container_cpu_cfs_throttled_seconds_total', 'counter', 'Total time duration the container has been throttled.'),
  d('container_memory_usage_bytes', 'gauge', 'Current memory usage in bytes, including all memory regardless of when it was accessed'),
  d('container_memory_working_set_bytes', 'gauge', 'Current working set in bytes.'),
  d('container_memory_rss', 'gauge', 'Size of RSS in bytes.'),
  d('container_memory_cache', 'gauge', 'Number of bytes of page cache memory.'),
  d('container_memory_mapped_file', 'gauge', 'Size of memory mapped files in bytes.'),
  d('container_memory_swap', 'gauge', 'Container swap usage in bytes.'),
  d('container_memory_max_usage_bytes', 'gauge', 'Maximum memory usage recorded in bytes'),
  d('container_memory_failcnt', 'counter', 'Number of memory usage hits limits'),
  d('container_memory_failures_total', 'counter', 'Cumulative count of memory allocation failures.', ['failure_type', 'scope']),
  d('container_oom_events_total', 'counter', 'Count of out of memory events observed for the container'),
  d('container_processes', 'gauge', 'Number of processes running inside the container.'),
  d('container_threads', 'gauge', 'Number of threads running inside the container'),
  d('container_file_descriptors', 'gauge', 'Number of open file descriptors for the container.'),
  d('container_spec_cpu_period', 'gauge', 'CPU period of the container.'),
  d('container_spec_cpu_quota', 'gauge', 'CPU quota of the container.'),
  d('container_spec_cpu_shares', 'gauge', 'CPU share of the container.'),
  d('container_spec_memory_limit_bytes', 'gauge', 'Memory limit for the container.'),
  d('container_spec_memory_reservation_limit_bytes', 'gauge', 'Memory reservation limit for the container.'),
  d('container_spec_memory_swap_limit_bytes', 'gauge', 'Memory swap limit for the container.'),
  d('container_start_time_seconds', 'gauge', 'Start time of the container since unix epoch in seconds.'),
  d('container_last_seen', 'gauge', 'Last time a container was seen by the exporter'),
  d('container_network_receive_bytes_total', 'counter', 'Cumulative count of bytes received', IFACE),
  d('container_network_receive_packets_total', 'counter', 'Cumulative count of packets received', IFACE),
  d('container_network_receive_packets_dropped_total', 'counter', 'Cumulative count of packets dropped while receiving', IFACE),
  d('container_network_receive_errors_total', 'counter', 'Cumulative count of errors encountered while receiving', IFACE),
  d('container_network_transmit_bytes_total', 'counter', 'Cumulative count of bytes transmitted', IFACE),
  d('container_network_transmit_packets_total', 'counter', 'Cumulative count of packets transmitted', IFACE),
  d('container_network_transmit_packets_dropped_total', 'counter', 'Cumulative count of packets dropped while transmitting', IFACE),
  d('container_network_transmit_errors_total', 'counter', 'Cumulative count of errors encountered while transmitting', IFACE),
];

/** The names ListMetricDescriptors offers (tests check samples against them). */
export const CRI_METRIC_NAMES: readonly string[] = DESCRIPTORS.map((x) => x.name);
const BY_NAME = new Map(DESCRIPTORS.map((x) => [x.name, x]));

export function makeListMetricDescriptors(): UnaryHandler<'ListMetricDescriptors'> {
  return async () => ({ descriptors: DESCRIPTORS.map((x) => ({ name: x.name, help: x.help, labelKeys: [...BASE, ...(x.extra ?? [])] })) });
}

const NS = 1_000_000_000n;

/** Collects the samples of one container or pod under its base label values. */
class Samples {
  readonly out: DeepPartial<Metric>[] = [];
  constructor(readonly base: readonly string[], readonly timestamp: bigint) {}

  add(name: string, value: bigint | undefined, extra: readonly string[] = []): void {
    if (value === undefined || value < 0n) return;
    const desc = BY_NAME.get(name)!;
    this.out.push({
      name,
      timestamp: this.timestamp,
      metricType: desc.kind === 'counter' ? MetricType.COUNTER : MetricType.GAUGE,
      labelValues: [...this.base, ...extra],
      value: { value },
    });
  }
}

const secs = (ns: bigint | undefined) => (ns === undefined ? undefined : ns / NS);

function containerSamples(base: string[], c: Container, cg: CgroupStats, m: CgroupMetrics): DeepPartial<Metric>[] {
  const s = new Samples(base, cg.timestampNs);
  s.add('container_cpu_usage_seconds_total', secs(cg.cpuUsageNs), ['total']);
  s.add('container_cpu_user_seconds_total', secs(m.cpuUserNs));
  s.add('container_cpu_system_seconds_total', secs(m.cpuSystemNs));
  s.add('container_cpu_cfs_periods_total', m.cfsPeriods);
  s.add('container_cpu_cfs_throttled_periods_total', m.cfsThrottledPeriods);
  s.add('container_cpu_cfs_throttled_seconds_total', secs(m.cfsThrottledNs));
  s.add('container_memory_usage_bytes', cg.memoryUsageBytes);
  s.add('container_memory_working_set_bytes', cg.memoryWorkingSetBytes);
  s.add('container_memory_rss', cg.memoryRssBytes);
  s.add('container_memory_cache', m.memoryCacheBytes);
  s.add('container_memory_mapped_file', m.memoryMappedFileBytes);
  s.add('container_memory_swap', m.memorySwapBytes);
  s.add('container_memory_max_usage_bytes', m.memoryMaxUsageBytes);
  s.add('container_memory_failcnt', m.memoryFailcnt);
  // cAdvisor: pgfault and pgmajfault, for the container's own cgroup and its hierarchy.
  for (const scope of ['container', 'hierarchy']) {
    s.add('container_memory_failures_total', cg.pageFaults, ['pgfault', scope]);
    s.add('container_memory_failures_total', cg.majorPageFaults, ['pgmajfault', scope]);
  }
  s.add('container_oom_events_total', m.oomKills);
  s.add('container_processes', m.processes);
  s.add('container_threads', m.threads ?? cg.processCount);
  s.add('container_file_descriptors', m.fileDescriptors);
  s.add('container_spec_cpu_period', m.specCpuPeriod);
  s.add('container_spec_cpu_quota', m.specCpuQuota);
  s.add('container_spec_cpu_shares', m.specCpuShares);
  s.add('container_spec_memory_limit_bytes', cg.memoryLimitBytes);
  s.add('container_spec_memory_reservation_limit_bytes', m.specMemoryReservationBytes);
  s.add('container_spec_memory_swap_limit_bytes', m.specMemorySwapLimitBytes);
  const started = BigInt(c.status.startedAt || '0');
  if (started > 0n) s.add('container_start_time_seconds', started / NS);
  s.add('container_last_seen', cg.timestampNs / NS);
  return s.out;
}

function networkSamples(base: string[], ifaces: readonly InterfaceCounters[]): DeepPartial<Metric>[] {
  const s = new Samples(base, BigInt(Date.now()) * 1_000_000n);
  for (const i of ifaces) {
    if (i.name === 'lo') continue;
    const l = [i.name];
    s.add('container_network_receive_bytes_total', i.rxBytes, l);
    s.add('container_network_receive_packets_total', i.rxPackets, l);
    s.add('container_network_receive_packets_dropped_total', i.rxDropped, l);
    s.add('container_network_receive_errors_total', i.rxErrors, l);
    s.add('container_network_transmit_bytes_total', i.txBytes, l);
    s.add('container_network_transmit_packets_total', i.txPackets, l);
    s.add('container_network_transmit_packets_dropped_total', i.txDropped, l);
    s.add('container_network_transmit_errors_total', i.txErrors, l);
  }
  return s.out;
}

async function podMetrics(ctx: OpContext, deps: ContainersDeps): Promise<DeepPartial<PodSandboxMetrics>[]> {
  const byPod = new Map<string, DeepPartial<PodSandboxMetrics>>();
  const network: Promise<void>[] = [];
  for (const c of deps.store.list()) {
    if (c.status.state !== 'running') continue;
    const podId = c.meta.podSandboxId;
    const pod = deps.pods.get(podId);
    const ns = pod?.config.metadata?.namespace ?? '';
    const podName = pod?.config.metadata?.name ?? '';
    const cg = deps.host.readCgroupStats(c.meta.cgroupsPath);
    const m = deps.host.readCgroupMetrics(c.meta.cgroupsPath);
    const labels = [c.meta.name, c.meta.cgroupsPath, c.meta.imageName, c.id, ns, podName];
    let entry = byPod.get(podId);
    if (!entry) {
      const e: DeepPartial<PodSandboxMetrics> = (entry = { podSandboxId: podId, metrics: [], containerMetrics: [] });
      byPod.set(podId, e);
      // The pod's network, once per pod, from inside its namespace (none for host
      // network); the pods' reads run side by side.
      if (pod?.netnsPath) {
        network.push(
          deps.host
            .netDevCounters(pod.netnsPath, ctx.signal)
            .catch(() => [])
            .then((ifaces) => {
              e.metrics = networkSamples(['POD', pod.cgroupParent, '', podId, ns, podName], ifaces);
            }),
        );
      }
    }
    entry.containerMetrics!.push({ containerId: c.id, metrics: containerSamples(labels, c, cg, m) });
  }
  await Promise.all(network);
  return [...byPod.values()];
}

export function makeListPodSandboxMetrics(deps: ContainersDeps): UnaryHandler<'ListPodSandboxMetrics'> {
  return async (ctx) => ({ podMetrics: await podMetrics(ctx, deps) });
}

export function makeStreamPodSandboxMetrics(deps: ContainersDeps): StreamHandler<'StreamPodSandboxMetrics'> {
  return async (ctx, _req, send) => {
    const all = await podMetrics(ctx, deps);
    for (let i = 0; i < all.length; i += 100) await send({ podSandboxMetrics: all.slice(i, i + 100) });
    if (all.length === 0) await send({ podSandboxMetrics: [] });
  };
}
