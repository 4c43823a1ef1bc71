import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MetricType } from '../../src/gen/runtime/v1/api.js';
import { makeListMetricDescriptors, makeListPodSandboxMetrics } from '../../src/services/containers/pod-metrics.js';
import { makeStartContainer } from '../../src/services/containers/start-container.js';
import { containersUnit, create, ctx, POD_ID } from '../helpers/containers-unit.js';

test('CRI metrics: every sample names a descriptor and carries exactly its label keys, as kubelet requires', async (t) => {
  const u = containersUnit(t);
  (u.pods.pod as { netnsPath: string | undefined }).netnsPath = '/fake/netns';
  const id = await create(u);
  await makeStartContainer(u.deps)(ctx(), { containerId: id });
  const { descriptors } = await makeListMetricDescriptors()(ctx(), {});
  const keys = new Map(descriptors!.map((d) => [d.name!, d.labelKeys!]));
  // What kubelet's cAdvisor-based dashboards read first.
  for (const name of ['container_cpu_usage_seconds_total', 'container_memory_working_set_bytes', 'container_memory_failures_total',
    'container_network_receive_bytes_total', 'container_spec_memory_limit_bytes', 'container_oom_events_total', 'container_start_time_seconds']) {
    assert.ok(keys.has(name), name);
  }
  assert.deepEqual(keys.get('container_cpu_usage_seconds_total'), ['container', 'id', 'image', 'name', 'namespace', 'pod', 'cpu']);

  const { podMetrics } = await makeListPodSandboxMetrics(u.deps)(ctx(), {});
  assert.equal(podMetrics!.length, 1);
  const pm = podMetrics![0]!;
  assert.equal(pm.podSandboxId, POD_ID);
  const all = [...pm.metrics!, ...pm.containerMetrics!.flatMap((c) => c.metrics!)];
  const seen = new Set<string>();
  for (const m of all) {
    const k = keys.get(m.name!);
    assert.ok(k, `${m.name} has no descriptor`);
    assert.equal(m.labelValues!.length, k.length, `${m.name}: ${m.labelValues!.join(',')} against ${k.join(',')}`);
    const series = `${m.name}{${m.labelValues!.join(',')}}`;
    assert.ok(!seen.has(series), `${series} twice`);
    seen.add(series);
  }
  const find = (name: string, ...extra: string[]) =>
    all.find((m) => m.name === name && extra.every((e, i) => m.labelValues![m.labelValues!.length - extra.length + i] === e));
  const cpu = find('container_cpu_usage_seconds_total', 'total')!;
  assert.equal(cpu.metricType, MetricType.COUNTER);
  assert.equal(cpu.labelValues![0], 'c');
  assert.equal(cpu.labelValues![3], id);
  assert.deepEqual(cpu.labelValues!.slice(4, 6), ['n', 'p']);
  assert.equal(find('container_cpu_user_seconds_total')!.value!.value, 3n);
  assert.equal(find('container_memory_working_set_bytes')!.metricType, MetricType.GAUGE);
  assert.ok(find('container_memory_failures_total', 'pgmajfault', 'hierarchy'));
  assert.ok(BigInt(find('container_start_time_seconds')!.value!.value!) > 0n);
  // The pod's network: once, on the pod, with container="POD", loopback left out.
  const rx = pm.metrics!.filter((m) => m.name === 'container_network_receive_bytes_total');
  assert.deepEqual(rx.map((m) => [m.labelValues![0], m.labelValues![6], m.value!.value]), [['POD', 'eth0', 2000n]]);
});
