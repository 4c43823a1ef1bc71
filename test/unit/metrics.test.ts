import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { parseHostPort } from '../../src/config/host-port.js';
import { ConfigSchema } from '../../src/config/schema.js';
import { CricketError } from '../../src/core/errors.js';
import { failureReason, timed } from '../../src/core/metrics.js';
import { MetricsServer } from '../../src/metrics/metrics-server.js';
import { PrometheusMetrics } from '../../src/metrics/prometheus-metrics.js';
import { promtoolCheck, sample } from '../helpers/prometheus.js';

test('host:port addresses: IPv4, bracketed IPv6 and names are taken; anything else is a sentence saying why', () => {
  assert.deepEqual(parseHostPort('127.0.0.1:9090'), { host: '127.0.0.1', port: 9090 });
  assert.deepEqual(parseHostPort('[::1]:0'), { host: '::1', port: 0 });
  assert.deepEqual(parseHostPort('localhost:65535'), { host: 'localhost', port: 65535 });
  for (const [bad, why] of [
    ['127.0.0.1', /host:port/],
    [':9090', /host:port/],
    ['127.0.0.1:65536', /out of range/],
    ['::1:9090', /host:port/],
    ['[127.0.0.1]:9090', /not an IPv6/],
    ['bad_host!:80', /host:port|neither/],
    ['127.0.0.1:http', /host:port/],
  ] as const) {
    const r = parseHostPort(bad);
    assert.equal(typeof r, 'string', bad);
    assert.match(r as string, why, bad);
  }
});

test('config: metrics.address and tracing.endpoint default to off and refuse a malformed value naming the key', () => {
  assert.equal(ConfigSchema.parse({}).metrics.address, '');
  const r = ConfigSchema.safeParse({ metrics: { address: 'localhost' } });
  assert.equal(r.success, false);
  assert.deepEqual(r.error!.issues[0]!.path, ['metrics', 'address']);
  assert.match(r.error!.issues[0]!.message, /host:port/);
  assert.equal(ConfigSchema.parse({}).tracing.endpoint, '');
  assert.equal(ConfigSchema.parse({ tracing: { endpoint: 'http://127.0.0.1:4318/v1/traces' } }).tracing.endpoint, 'http://127.0.0.1:4318/v1/traces');
  const t = ConfigSchema.safeParse({ tracing: { endpoint: '127.0.0.1:4318' } });
  assert.deepEqual(t.error?.issues[0]?.path, ['tracing', 'endpoint']);
});

test('failure reasons are error codes only; timed() reports and rethrows', async () => {
  assert.equal(failureReason(new CricketError('NotFound', 'x')), 'NotFound');
  assert.equal(failureReason(Object.assign(new Error('x'), { code: 'ENOENT' })), 'Internal');
  const seen: [number, unknown][] = [];
  assert.equal(await timed(async () => 7, (s, e) => seen.push([s, e])), 7);
  await assert.rejects(timed(async () => { throw new CricketError('Internal', 'boom'); }, (s, e) => seen.push([s, e])), /boom/);
  assert.equal(seen.length, 2);
  assert.equal(seen[0]![1], undefined);
  assert.ok(seen[1]![1] instanceof CricketError);
  assert.ok(seen.every(([s]) => s >= 0));
});

test('every instrument renders in a form promtool accepts, labelled only by bounded values', async () => {
  const m = new PrometheusMetrics();
  m.rpc('Status', 0, 0.0003);
  m.rpc('Status', 0, 0.0004);
  m.rpc('ContainerStatus', 5, 0.0002);
  m.rpc('Weird', 99, 0.1);
  m.podStart(1.5);
  m.podStart(0.2, 'Internal');
  m.containerStart(0.3);
  m.containerStart(0.1, 'FailedPrecondition');
  m.containerOomKilled();
  m.imagePull(2);
  m.imagePull(0.5, 'RegistryUnavailable');
  m.imageBytesPulled(1234);
  m.cniCall('ADD', 0.2, true);
  m.cniCall('DEL', 0.1, false);
  m.runtimeCall('/usr/sbin/runc', 'start', 0.05, true);
  m.runtimeCall('/usr/bin/runsc', 'kill', 0.05, false);
  m.recovered(0.25);
  m.addSource({ podsByState: () => ({ ready: 2, notready: 1 }), imageStore: () => ({ images: 3, bytes: 4096 }) });
  m.addSource({ containersByState: () => ({ running: 4 }), conmonProcesses: () => 4 });
  const { body, contentType } = await m.render();
  assert.match(contentType, /^text\/plain; version=0\.0\.4/);
  const check = promtoolCheck(body);
  assert.ok(check.ok, check.output);
  assert.equal(check.output.trim(), '', 'promtool has no remark either');
  assert.equal(sample(body, 'cricket_grpc_requests_total{method="Status",code="OK"}'), 2);
  assert.equal(sample(body, 'cricket_grpc_request_duration_seconds_count{method="Status",code="OK"}'), 2);
  assert.equal(sample(body, 'cricket_grpc_request_duration_seconds_bucket{le="0.0005",method="Status",code="OK"}'), 2);
  assert.equal(sample(body, 'cricket_grpc_requests_total{method="ContainerStatus",code="NotFound"}'), 1);
  assert.equal(sample(body, 'cricket_grpc_requests_total{method="Weird",code="99"}'), 1);
  assert.equal(sample(body, 'cricket_pod_starts_total'), 1);
  assert.equal(sample(body, 'cricket_pod_start_failures_total{reason="Internal"}'), 1);
  assert.equal(sample(body, 'cricket_pod_start_duration_seconds_count'), 1);
  assert.equal(sample(body, 'cricket_container_starts_total'), 1);
  assert.equal(sample(body, 'cricket_container_start_failures_total{reason="FailedPrecondition"}'), 1);
  assert.equal(sample(body, 'cricket_container_oom_kills_total'), 1);
  assert.equal(sample(body, 'cricket_image_pulls_total{result="success",reason="none"}'), 1);
  assert.equal(sample(body, 'cricket_image_pulls_total{result="failure",reason="RegistryUnavailable"}'), 1);
  assert.equal(sample(body, 'cricket_image_pulled_bytes_total'), 1234);
  assert.equal(sample(body, 'cricket_cni_operation_duration_seconds_count{operation="ADD"}'), 1);
  assert.equal(sample(body, 'cricket_cni_operation_failures_total{operation="DEL"}'), 1);
  assert.equal(sample(body, 'cricket_runtime_operation_duration_seconds_count{runtime="runc",subcommand="start"}'), 1);
  assert.equal(sample(body, 'cricket_runtime_operation_failures_total{runtime="runsc",subcommand="kill"}'), 1);
  assert.equal(sample(body, 'cricket_recovery_duration_seconds'), 0.25);
  assert.equal(sample(body, 'cricket_pods{state="ready"}'), 2);
  assert.equal(sample(body, 'cricket_containers{state="running"}'), 4);
  assert.equal(sample(body, 'cricket_images'), 3);
  assert.equal(sample(body, 'cricket_image_store_bytes'), 4096);
  assert.equal(sample(body, 'cricket_conmon_processes'), 4);
  assert.ok(sample(body, 'process_resident_memory_bytes')! > 0);
  assert.notEqual(sample(body, 'process_open_fds'), undefined);
  assert.match(body, /^nodejs_eventloop_lag_seconds /m);
  assert.match(body, /^nodejs_heap_size_used_bytes /m);
  assert.doesNotMatch(body, /\/usr\//, 'no runtime path in a label');
});

test('the metrics server: GET /metrics, 404 elsewhere, 405 for other methods; a taken or malformed address is one clear error', async (t) => {
  const srv = new MetricsServer(new PrometheusMetrics());
  t.after(() => srv.close());
  const at = await srv.listen('127.0.0.1:0');
  assert.match(at, /^127\.0\.0\.1:\d+$/);
  const ok = await fetch(`http://${at}/metrics`);
  assert.equal(ok.status, 200);
  assert.match(await ok.text(), /^# HELP cricket_grpc_request_duration_seconds/m);
  assert.equal((await fetch(`http://${at}/`)).status, 404);
  assert.equal((await fetch(`http://${at}/metrics`, { method: 'POST', body: 'x' })).status, 405);

  const other = new MetricsServer(new PrometheusMetrics());
  await assert.rejects(other.listen(at), (e: unknown) => e instanceof CricketError && e.code === 'FailedPrecondition' && /in use/.test(e.message));
  await assert.rejects(new MetricsServer(new PrometheusMetrics()).listen('nohost'), (e: unknown) => e instanceof CricketError && e.code === 'InvalidArgument');
  // A port some other program holds is refused the same way.
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  t.after(() => blocker.close());
  await assert.rejects(other.listen(`127.0.0.1:${(blocker.address() as AddressInfo).port}`), /in use/);
});
