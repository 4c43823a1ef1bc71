import { status } from '@grpc/grpc-js';
import { CriCallError, type CallOptions, type CriClient, type ReqOf, type ResOf } from '../../src/client/cri-client.js';
import type { DeepPartial } from '../../src/gen/runtime/v1/api.js';
import type { MethodName } from '../../src/gen/methods.js';

// Every CRI call the soak makes goes through SoakRpc, which knows the daemon's life
// (epochs: one per process, bumped just before each SIGKILL) and so can tell a
// provoked failure from a real one:
//   inflight     the call was under way when the daemon was SIGKILLed
//   unavailable  UNAVAILABLE while the restarted daemon recovers (or just after)
//   failed       anything else: a finding, the goal is none
// Provoked failures are retried as kubelet would (idempotent calls again, creates by
// converging on what the daemon lists); real ones are counted, with their text.

export type Outcome = 'ok' | 'failed' | 'inflight' | 'unavailable';

/** A call that failed because the soak killed the daemon under it (or it was recovering). */
export class Provoked extends Error {
  constructor(readonly method: string, readonly kind: 'inflight' | 'unavailable', cause: unknown) {
    super(`${method}: provoked (${kind}): ${(cause as Error).message}`);
  }
}

/** A real failure (already counted): the caller gives up on what it was doing. */
export class Failed extends Error {
  constructor(readonly method: string, readonly code: number | undefined, message: string) {
    super(message);
  }
}

export interface MethodTally {
  calls: number;
  ok: number;
  failed: number;
  inflight: number;
  unavailable: number;
  latenciesMs: number[];
}

/** Real failures by method and message (ids and numbers folded, so repeats group). */
export class FailureLog {
  readonly byKey = new Map<string, { count: number; first: string; firstAt: number }>();
  total = 0;
  constructor(private readonly t0: number) {}
  add(what: string, message: string): void {
    this.total++;
    const key = `${what}: ${fold(message)}`;
    const e = this.byKey.get(key);
    if (e) e.count++;
    else {
      this.byKey.set(key, { count: 1, first: message, firstAt: Date.now() - this.t0 });
      process.stdout.write(`[soak] FAILURE ${what}: ${message.slice(0, 400)}\n`);
    }
  }
}

export function fold(message: string): string {
  return message
    .replace(/[0-9a-f]{64}/g, '<id>')
    .replace(/[0-9a-f]{12,63}/g, '<hex>')
    .replace(/\d+(\.\d+)?/g, 'N')
    .slice(0, 300);
}

export interface RpcOptions {
  timeoutMs?: number;
  /** never: throw Provoked to the caller; provoked (default): retry provoked failures; always: real failures too, up to 4 times. */
  retry?: 'never' | 'provoked' | 'always';
  /** Codes that are an answer here, not a failure (e.g. NOT_FOUND after a removal). */
  expect?: number[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class SoakRpc {
  readonly tally = new Map<MethodName | string, MethodTally>();
  readonly failures: FailureLog;
  /** Bumped just before each SIGKILL. */
  epoch = 0;
  /** While the daemon is dead and not yet answering: calls wait. */
  #gate: Promise<void> = Promise.resolve();
  #openGate: () => void = () => {};
  #client: CriClient;
  /** Recovery: from a restarted daemon's first Version answer to its first Status answer. */
  recovering = false;
  #readyAt = 0;
  /** After this, callers stop retrying (the soak is being torn down in a hurry). */
  abandon = false;
  /** After a Ctrl-C (which reaches the daemon too): failures are the interruption's. */
  interrupted = false;

  constructor(client: CriClient, t0: number) {
    this.#client = client;
    this.failures = new FailureLog(t0);
  }

  get client(): CriClient {
    return this.#client;
  }

  /** The daemon is about to be SIGKILLed: calls from now on wait for the next one. */
  down(): void {
    this.epoch++;
    this.#gate = new Promise((r) => (this.#openGate = r));
  }

  /** A new daemon answers Version (recovery may still be running). */
  up(client: CriClient): void {
    this.#client = client;
    this.recovering = true;
    this.#openGate();
  }

  ready(): void {
    this.recovering = false;
    this.#readyAt = Date.now();
  }

  #entry(method: string): MethodTally {
    let t = this.tally.get(method);
    if (!t) this.tally.set(method, (t = { calls: 0, ok: 0, failed: 0, inflight: 0, unavailable: 0, latenciesMs: [] }));
    return t;
  }

  /** Counts a failed check that is not an RPC error (wrong exec output, a log not reopened). */
  checkFailed(what: string, message: string): void {
    this.#entry(`check:${what}`).failed++;
    this.failures.add(`check:${what}`, message);
  }

  classify(err: unknown, epochAtStart: number): Exclude<Outcome, 'ok'> {
    if (epochAtStart !== this.epoch || this.interrupted) return 'inflight';
    const code = err instanceof CriCallError ? err.code : undefined;
    // Answers cross the moment recovery ends: a grace of 2 s.
    if (code === status.UNAVAILABLE && (this.recovering || Date.now() - this.#readyAt < 2000)) return 'unavailable';
    return 'failed';
  }

  /** Runs `fn` as one counted operation under `what` (used for streaming sessions too). */
  async op<T>(what: string, fn: (client: CriClient) => Promise<T>, o: RpcOptions = {}): Promise<T | undefined> {
    const retry = o.retry ?? 'provoked';
    for (let attempt = 0; ; attempt++) {
      await this.#gate;
      const t = this.#entry(what);
      const epoch = this.epoch;
      const t0 = performance.now();
      t.calls++;
      try {
        const res = await fn(this.#client);
        t.ok++;
        t.latenciesMs.push(performance.now() - t0);
        return res;
      } catch (err) {
        const code = err instanceof CriCallError ? err.code : undefined;
        if (code !== undefined && o.expect?.includes(code)) {
          t.ok++;
          t.latenciesMs.push(performance.now() - t0);
          return undefined;
        }
        const kind = this.classify(err, epoch);
        t[kind]++;
        if (kind === 'failed') {
          const msg = err instanceof Error ? err.message : String(err);
          this.failures.add(what, msg);
          if (retry !== 'always' || attempt >= 3 || this.abandon) throw new Failed(what, code, msg);
          await sleep(1000);
          continue;
        }
        if (retry === 'never' || this.abandon) throw new Provoked(what, kind, err);
        // kubelet's backoff is per pod and longer; this keeps recovery busy, as many pods would.
        await sleep(Math.min(100 * 2 ** Math.min(attempt, 4), 1000));
      }
    }
  }

  call<M extends MethodName>(method: M, req: DeepPartial<ReqOf<M>>, o: RpcOptions = {}): Promise<ResOf<M> | undefined> {
    const opts: CallOptions = { timeoutMs: o.timeoutMs ?? 120_000 };
    return this.op(method, (c) => c.call(method, req, opts), o);
  }

  /** The same, for calls whose success must yield a response (no expected codes). */
  async must<M extends MethodName>(method: M, req: DeepPartial<ReqOf<M>>, o: Omit<RpcOptions, 'expect'> = {}): Promise<ResOf<M>> {
    return (await this.call(method, req, o))!;
  }
}
