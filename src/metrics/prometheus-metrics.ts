import { basename } from 'node:path';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Metrics, MetricsSource } from '../core/metrics.js';
import { RpcStats } from './rpc-stats.js';

// gRPC status codes by number, named as grpc-go and grpc-prometheus name them.
const GRPC_CODES = [
  'OK', 'Canceled', 'Unknown', 'InvalidArgument', 'DeadlineExceeded', 'NotFound', 'AlreadyExists', 'PermissionDenied',
  'ResourceExhausted', 'FailedPrecondition', 'Aborted', 'OutOfRange', 'Unimplemented', 'Internal', 'Unavailable',
  'DataLoss', 'Unauthenticated',
];

// Status and List calls take well under a millisecond here; pulls and pod starts seconds.
const RPC_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
const START_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
const PULL_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
const CALL_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/**
 * The daemon's metrics as prom-client instruments in one private registry (nothing
 * global, so two in one process, as in tests, do not collide). Names follow the
 * Prometheus conventions: the cricket_ prefix, base units, _total on counters. Label
 * values come from bounded sets only (RPC names, gRPC codes, error codes, runtime
 * binaries, subcommands); never an id.
 */
export class PrometheusMetrics implements Metrics {
  readonly registry = new Registry();
  readonly #sources: MetricsSource[] = [];
  readonly #rpcs: RpcStats;
  readonly #podStarts: Counter;
  readonly #podStartFailures: Counter<'reason'>;
  readonly #podStartDuration: Histogram;
  readonly #containerStarts: Counter;
  readonly #containerStartFailures: Counter<'reason'>;
  readonly #containerStartDuration: Histogram;
  readonly #oomKills: Counter;
  readonly #pulls: Counter<'result' | 'reason'>;
  readonly #pullDuration: Histogram<'result'>;
  readonly #pulledBytes: Counter;
  readonly #cniDuration: Histogram<'operation'>;
  readonly #cniFailures: Counter<'operation'>;
  readonly #runtimeDuration: Histogram<'runtime' | 'subcommand'>;
  readonly #runtimeFailures: Counter<'runtime' | 'subcommand'>;
  readonly #recovery: Gauge;

  constructor() {
    const registers = [this.registry];
    this.#rpcs = new RpcStats(this.registry, {
      histogram: 'cricket_grpc_request_duration_seconds',
      histogramHelp: 'Time to answer a CRI RPC, by method and gRPC status code.',
      counter: 'cricket_grpc_requests_total',
      counterHelp: 'CRI RPCs answered, by method and gRPC status code.',
      buckets: RPC_BUCKETS,
      codeNames: GRPC_CODES,
    });
    this.#podStarts = new Counter({ name: 'cricket_pod_starts_total', help: 'Pod sandboxes started (RunPodSandbox succeeded).', registers });
    this.#podStartFailures = new Counter({
      name: 'cricket_pod_start_failures_total',
      help: 'RunPodSandbox calls that failed, by error code.',
      labelNames: ['reason'],
      registers,
    });
    this.#podStartDuration = new Histogram({
      name: 'cricket_pod_start_duration_seconds',
      help: 'Time a successful RunPodSandbox took.',
      buckets: START_BUCKETS,
      registers,
    });
    this.#containerStarts = new Counter({ name: 'cricket_container_starts_total', help: 'Containers started (StartContainer succeeded).', registers });
    this.#containerStartFailures = new Counter({
      name: 'cricket_container_start_failures_total',
      help: 'StartContainer calls that failed, by error code.',
      labelNames: ['reason'],
      registers,
    });
    this.#containerStartDuration = new Histogram({
      name: 'cricket_container_start_duration_seconds',
      help: 'Time a successful StartContainer took.',
      buckets: START_BUCKETS,
      registers,
    });
    this.#oomKills = new Counter({ name: 'cricket_container_oom_kills_total', help: 'Containers that exited killed by the OOM killer.', registers });
    this.#pulls = new Counter({
      name: 'cricket_image_pulls_total',
      help: 'PullImage calls by result (success, failure) and reason (the error code; "none" on success).',
      labelNames: ['result', 'reason'],
      registers,
    });
    this.#pullDuration = new Histogram({
      name: 'cricket_image_pull_duration_seconds',
      help: 'Time a PullImage took, by result.',
      labelNames: ['result'],
      buckets: PULL_BUCKETS,
      registers,
    });
    this.#pulledBytes = new Counter({ name: 'cricket_image_pulled_bytes_total', help: 'Bytes downloaded from registries.', registers });
    this.#cniDuration = new Histogram({
      name: 'cricket_cni_operation_duration_seconds',
      help: 'Time of a CNI ADD or DEL through the whole plugin chain.',
      labelNames: ['operation'],
      buckets: CALL_BUCKETS,
      registers,
    });
    this.#cniFailures = new Counter({
      name: 'cricket_cni_operation_failures_total',
      help: 'CNI ADD or DEL operations that failed.',
      labelNames: ['operation'],
      registers,
    });
    this.#runtimeDuration = new Histogram({
      name: 'cricket_runtime_operation_duration_seconds',
      help: 'Time of an OCI runtime call by runtime binary and subcommand (create is conmon starting runc create).',
      labelNames: ['runtime', 'subcommand'],
      buckets: CALL_BUCKETS,
      registers,
    });
    this.#runtimeFailures = new Counter({
      name: 'cricket_runtime_operation_failures_total',
      help: 'OCI runtime calls that failed, by runtime binary and subcommand.',
      labelNames: ['runtime', 'subcommand'],
      registers,
    });
    this.#recovery = new Gauge({ name: 'cricket_recovery_duration_seconds', help: 'How long the recovery at the last start took.', registers });
    const sources = this.#sources;
    const sum = <K extends keyof MetricsSource>(key: K) => sources.map((s) => s[key]).filter((f) => f !== undefined);
    const byState = (g: Gauge<'state'>, key: 'podsByState' | 'containersByState') => {
      g.reset();
      for (const f of sum(key)) for (const [state, n] of Object.entries(f!.call(undefined))) g.inc({ state }, n);
    };
    new Gauge({
      name: 'cricket_pods',
      help: 'Pod sandboxes by state.',
      labelNames: ['state'],
      registers,
      collect() {
        byState(this, 'podsByState');
      },
    });
    new Gauge({
      name: 'cricket_containers',
      help: 'Containers by state.',
      labelNames: ['state'],
      registers,
      collect() {
        byState(this, 'containersByState');
      },
    });
    new Gauge({
      name: 'cricket_images',
      help: 'Images in the image store.',
      registers,
      collect() {
        this.set(sum('imageStore').reduce((n, f) => n + f!().images, 0));
      },
    });
    new Gauge({
      name: 'cricket_image_store_bytes',
      help: 'Bytes the stored images take as pulled (compressed layers and configs).',
      registers,
      collect() {
        this.set(sum('imageStore').reduce((n, f) => n + f!().bytes, 0));
      },
    });
    new Gauge({
      name: 'cricket_conmon_processes',
      help: 'conmon monitor processes of the daemon\'s containers.',
      registers,
      collect() {
        this.set(sum('conmonProcesses').reduce((n, f) => n + f!(), 0));
      },
    });
    // process_* and nodejs_*: heap, RSS, open fds, event-loop lag, GC.
    collectDefaultMetrics({ register: this.registry });
    // prom-client's defaults include three gauges named like counters, which promtool
    // rejects; nodejs_active_handles, _requests and _resources carry the same counts.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
      this.registry.removeSingleMetric(name);
    }
  }

  rpc(method: string, grpcCode: number, seconds: number): void {
    this.#rpcs.record(method, grpcCode, seconds);
  }

  podStart(seconds: number, failure?: string): void {
    if (failure === undefined) {
      this.#podStarts.inc();
      this.#podStartDuration.observe(seconds);
    } else this.#podStartFailures.inc({ reason: failure });
  }

  containerStart(seconds: number, failure?: string): void {
    if (failure === undefined) {
      this.#containerStarts.inc();
      this.#containerStartDuration.observe(seconds);
    } else this.#containerStartFailures.inc({ reason: failure });
  }

  containerOomKilled(): void {
    this.#oomKills.inc();
  }

  imagePull(seconds: number, failure?: string): void {
    const result = failure === undefined ? 'success' : 'failure';
    this.#pulls.inc({ result, reason: failure ?? 'none' });
    this.#pullDuration.observe({ result }, seconds);
  }

  imageBytesPulled(bytes: number): void {
    this.#pulledBytes.inc(bytes);
  }

  cniCall(op: 'ADD' | 'DEL', seconds: number, ok: boolean): void {
    this.#cniDuration.observe({ operation: op }, seconds);
    if (!ok) this.#cniFailures.inc({ operation: op });
  }

  runtimeCall(runtime: string, subcommand: string, seconds: number, ok: boolean): void {
    // The binary's name (runc, runsc, crun), never its path: a bounded label.
    const labels = { runtime: basename(runtime), subcommand };
    this.#runtimeDuration.observe(labels, seconds);
    if (!ok) this.#runtimeFailures.inc(labels);
  }

  recovered(seconds: number): void {
    this.#recovery.set(seconds);
  }

  addSource(source: MetricsSource): void {
    this.#sources.push(source);
  }

  /** The text exposition format, and its content type. */
  async render(): Promise<{ body: string; contentType: string }> {
    return { body: await this.registry.metrics(), contentType: this.registry.contentType };
  }
}
