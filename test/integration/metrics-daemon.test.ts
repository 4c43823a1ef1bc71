import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { CriCallError } from '../../src/client/cri-client.js';
import { ContainerState, NamespaceMode } from '../../src/gen/runtime/v1/api.js';
import { removeDir, runDaemonToExit, tempDir, type TestDaemon } from '../helpers/daemon.js';
import { pushBusyboxImage } from '../helpers/oci-image.js';
import { imagesConfigToml, startRegistry } from '../helpers/registry.js';
import { podConfig, run, setUp } from './pods-env.js';
import { promtoolCheck, sample } from '../helpers/prometheus.js';

/** The address the daemon logged for its metrics server (it was given port 0). */
export function metricsAddress(d: TestDaemon): string {
  for (const line of d.output().split('\n')) {
    if (!line.includes('serving metrics')) continue;
    return (JSON.parse(line) as { address: string }).address;
  }
  throw new Error(`the daemon logged no metrics address: ${d.output()}`);
}

test('--metrics-address: after a pull, a pod with its CNI network and a container, /metrics has their series and promtool accepts it', async (t) => {
  const reg = await startRegistry();
  t.after(() => reg.stop());
  const image = await pushBusyboxImage(reg.host, 'metrics/busybox', 'v1');
  const dir = tempDir('cricket-metrics-');
  const env = await setUp(t, dir, undefined, ['--metrics-address', '127.0.0.1:0'], imagesConfigToml(dir, reg.host));
  const c = env.d.client;
  const at = metricsAddress(env.d);
  const scrape = async () => {
    const res = await fetch(`http://${at}/metrics`);
    assert.equal(res.status, 200);
    return res.text();
  };

  await c.call('PullImage', { image: { image: image.ref } });
  await assert.rejects(c.call('PullImage', { image: { image: `${reg.host}/metrics/busybox:absent` } }), (e: CriCallError) => e.code === status.NOT_FOUND);
  const config = podConfig(env, 'metered');
  const pod = await run(c, config);
  const { containerId } = await c.call('CreateContainer', {
    podSandboxId: pod,
    sandboxConfig: config,
    config: { metadata: { name: 'sleeper', attempt: 0 }, image: { image: image.ref }, command: ['sleep', '600'], logPath: 'sleeper.log' },
  });
  await c.call('StartContainer', { containerId });
  await assert.rejects(c.call('StartContainer', { containerId }), (e: CriCallError) => e.code === status.FAILED_PRECONDITION);
  await assert.rejects(c.call('ContainerStatus', { containerId: 'f'.repeat(64) }), (e: CriCallError) => e.code === status.NOT_FOUND);
  assert.equal((await c.call('ContainerStatus', { containerId })).status!.state, ContainerState.CONTAINER_RUNNING);
  // The CRI metrics from this host's cgroups and the pod's namespace: label counts as
  // the descriptors say (kubelet drops any other), the container's cgroup read.
  const keys = new Map((await c.call('ListMetricDescriptors', {})).descriptors.map((x) => [x.name, x.labelKeys.length]));
  const pm = (await c.call('ListPodSandboxMetrics', {})).podMetrics.find((x) => x.podSandboxId === pod)!;
  const ctr = pm.containerMetrics.find((x) => x.containerId === containerId)!.metrics;
  for (const m of [...pm.metrics, ...ctr]) assert.equal(m.labelValues.length, keys.get(m.name), m.name);
  const value = (name: string) => ctr.find((m) => m.name === name)?.value?.value;
  assert.ok(value('container_memory_working_set_bytes')! > 0n);
  assert.equal(value('container_processes'), 1n, 'sleep is the one process');
  assert.ok(value('container_threads')! >= 1n);
  assert.ok(value('container_file_descriptors')! >= 1n);
  assert.ok(value('container_start_time_seconds')! > 0n);
  assert.ok(value('container_spec_cpu_shares')! > 0n);
  assert.ok(pm.metrics.some((m) => m.name === 'container_network_transmit_packets_total' && m.labelValues.at(-1) === 'eth0'));

  // A host-network pod: no CNI ADD for it.
  await run(c, podConfig(env, 'hostnet', { linux: { securityContext: { namespaceOptions: { network: NamespaceMode.NODE } } } }));

  const text = await scrape();
  const check = promtoolCheck(text);
  assert.ok(check.ok, check.output);
  assert.equal(sample(text, 'cricket_grpc_requests_total{method="RunPodSandbox",code="OK"}'), 2);
  assert.equal(sample(text, 'cricket_grpc_request_duration_seconds_count{method="PullImage",code="OK"}'), 1);
  assert.equal(sample(text, 'cricket_grpc_requests_total{method="PullImage",code="NotFound"}'), 1);
  assert.equal(sample(text, 'cricket_grpc_requests_total{method="StartContainer",code="FailedPrecondition"}'), 1);
  assert.equal(sample(text, 'cricket_grpc_requests_total{method="ContainerStatus",code="NotFound"}'), 1);
  assert.equal(sample(text, 'cricket_image_pulls_total{result="success",reason="none"}'), 1);
  assert.equal(sample(text, 'cricket_image_pulls_total{result="failure",reason="NotFound"}'), 1);
  assert.ok(sample(text, 'cricket_image_pulled_bytes_total')! > 100_000, 'the busybox layer was counted');
  assert.equal(sample(text, 'cricket_images'), 1);
  assert.ok(sample(text, 'cricket_image_store_bytes')! > 100_000);
  assert.equal(sample(text, 'cricket_pod_starts_total'), 2);
  assert.equal(sample(text, 'cricket_pod_start_duration_seconds_count'), 2);
  assert.equal(sample(text, 'cricket_cni_operation_duration_seconds_count{operation="ADD"}'), 1);
  assert.equal(sample(text, 'cricket_container_starts_total'), 1);
  assert.equal(sample(text, 'cricket_container_start_failures_total{reason="FailedPrecondition"}'), 1);
  assert.equal(sample(text, 'cricket_runtime_operation_duration_seconds_count{runtime="runc",subcommand="create"}'), 1);
  assert.equal(sample(text, 'cricket_runtime_operation_duration_seconds_count{runtime="runc",subcommand="start"}'), 1);
  assert.equal(sample(text, 'cricket_pods{state="ready"}'), 2);
  assert.equal(sample(text, 'cricket_containers{state="running"}'), 1);
  assert.equal(sample(text, 'cricket_conmon_processes'), 1);
  assert.ok(sample(text, 'cricket_recovery_duration_seconds')! >= 0);
  assert.ok(sample(text, 'process_resident_memory_bytes')! > 0);
  // No id of a pod, container or image in any label: they are unbounded.
  for (const id of [pod, containerId]) assert.ok(!text.includes(id.slice(0, 12)), `id ${id} in the metrics`);
  assert.doesNotMatch(text, /[0-9a-f]{64}/);

  // Teardown: DEL is timed, counts move.
  await c.call('StopPodSandbox', { podSandboxId: pod });
  const after = await scrape();
  assert.equal(sample(after, 'cricket_cni_operation_duration_seconds_count{operation="DEL"}'), 1);
  assert.equal(sample(after, 'cricket_pods{state="notready"}'), 1);
  assert.equal(sample(after, 'cricket_containers{state="exited"}'), 1);
  assert.equal(sample(after, 'cricket_conmon_processes'), 0);

  // A second daemon on the same metrics address stops at start with one line naming it.
  const other = tempDir('cricket-metrics2-');
  t.after(() => removeDir(other));
  writeFileSync(join(other, 'empty.toml'), '');
  const r = await runDaemonToExit([
    '--listen', join(other, 's.sock'), '--root', join(other, 'root'), '--run-root', join(other, 'run'),
    '--config', join(other, 'empty.toml'), '--config-dir', join(other, 'd'), '--metrics-address', at,
  ]);
  assert.notEqual(r.code, 0);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`cannot serve metrics on ${at.replace(/[.[\]]/g, '\\$&')}: the address is in use`));
  const bad = await runDaemonToExit(['--metrics-address', 'localhost']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /key metrics\.address: must be host:port/);
});
