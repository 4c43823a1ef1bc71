import { CricketError } from './errors.js';

/**
 * What the use cases report for the daemon's own metrics (Prometheus, src/metrics/).
 * A port: services call it without knowing who listens; with metrics off it is
 * NO_METRICS and every call is a no-op. Label values passed here are always from a
 * bounded set (an RPC name, an error code, a runtime's binary name, a subcommand),
 * never an id or a reference.
 */
export interface Metrics {
  /** One RPC answered, with its gRPC status code (0 = OK). Called on every call: must be cheap. */
  rpc(method: string, grpcCode: number, seconds: number): void;
  /** A RunPodSandbox that finished (ok) or failed, with the error code as the reason. */
  podStart(seconds: number, failure?: string): void;
  /** A StartContainer that finished (ok) or failed, with the error code as the reason. */
  containerStart(seconds: number, failure?: string): void;
  /** A container found to have exited because the kernel's OOM killer ended it. */
  containerOomKilled(): void;
  /** A PullImage that finished or failed; `bytes` is what was downloaded for it. */
  imagePull(seconds: number, failure?: string): void;
  /** Bytes downloaded from a registry into the content store. */
  imageBytesPulled(bytes: number): void;
  /** A CNI ADD or DEL through the whole plugin chain. */
  cniCall(op: 'ADD' | 'DEL', seconds: number, ok: boolean): void;
  /** A call of the OCI runtime (runc, runsc) by subcommand, or conmon's create. */
  runtimeCall(runtime: string, subcommand: string, seconds: number, ok: boolean): void;
  /** The daemon's start-up recovery finished. */
  recovered(seconds: number): void;
  /** Counts read at scrape time; each area adds what it owns. */
  addSource(source: MetricsSource): void;
}

/** What a scrape reads from the areas (all optional: each area fills its part). */
export interface MetricsSource {
  /** Pods by state (e.g. ready, notready). */
  podsByState?(): Record<string, number>;
  /** Containers by state (created, running, exited, unknown). */
  containersByState?(): Record<string, number>;
  /** Images in the store and the bytes they take (compressed, as pulled). */
  imageStore?(): { images: number; bytes: number };
  /** conmon processes the daemon watches (one per created or running container). */
  conmonProcesses?(): number;
}

export const NO_METRICS: Metrics = {
  rpc() {},
  podStart() {},
  containerStart() {},
  containerOomKilled() {},
  imagePull() {},
  imageBytesPulled() {},
  cniCall() {},
  runtimeCall() {},
  recovered() {},
  addSource() {},
};

/** Seconds since a process.hrtime.bigint() reading. */
export function secondsSince(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e9;
}

/** The reason label for a failure: the error's code when it has one, else "Internal". */
export function failureReason(err: unknown): string {
  return err instanceof CricketError ? err.code : 'Internal';
}

/**
 * Runs fn and reports how long it took and whether it threw (the error passes on):
 * for timing an RPC handler or a host call at the seam where a use case makes it.
 */
export async function timed<T>(fn: () => Promise<T>, report: (seconds: number, err: unknown) => void): Promise<T> {
  const start = process.hrtime.bigint();
  try {
    const out = await fn();
    report(secondsSince(start), undefined);
    return out;
  } catch (err) {
    report(secondsSince(start), err ?? new Error('failed'));
    throw err;
  }
}
