import { randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import type {
  handleServerStreamingCall,
  handleUnaryCall,
  ServerUnaryCall,
  ServerWritableStream,
  ServiceError,
} from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { OpContext } from '../core/context.js';
import type { Metrics } from '../core/metrics.js';
import type { RpcSpan, Tracing } from '../core/tracing.js';
import { CricketError, invalidArgument, unimplemented } from '../core/errors.js';
import { METHODS, type MethodName } from '../gen/methods.js';
import { toServiceError } from './status-map.js';
import type { Handlers, StreamHandler, UnaryHandler } from '../core/rpc.js';
import { ALWAYS_READY, QUIET_METHODS, UndecodableRequest } from './rpc-types.js';
import type { Readiness } from './readiness.js';

export interface WrapDeps {
  log: Logger;
  readiness: Readiness;
  /** Aborted when the daemon stops: ends long-lived streams so shutdown can finish. */
  shutdown: AbortSignal;
  /** Every answered call is counted and timed here (NO_METRICS when metrics are off). */
  metrics: Metrics;
  /** One span per call when tracing is on. */
  tracing?: Tracing | undefined;
}

type AnyCall = ServerUnaryCall<unknown, unknown> | ServerWritableStream<unknown, unknown>;

// Request ids: 12 hex digits, a random 48-bit start per daemon then counting up, so
// they stay unique across restarts in practice without asking the CSPRNG per call.
const ID_SPACE = 2 ** 48;
let nextId = randomBytes(6).readUIntBE(0, 6);
function newRequestId(): string {
  const id = nextId;
  nextId = (nextId + 1) % ID_SPACE;
  return id.toString(16).padStart(12, '0');
}

/**
 * One call's OpContext. The child logger and the AbortSignal (with its deadline timer,
 * cancel and shutdown listeners) are made on first use: most Status/List handlers use
 * neither, and making them was a large part of such a call's cost. A signal made late
 * sees what happened before: a cancelled call or a stopping daemon aborts it at once,
 * a deadline fires from the call's own deadline, not from the first use.
 */
class CallContext {
  readonly requestId = newRequestId();
  readonly #deps: WrapDeps;
  readonly #method: MethodName;
  readonly #call: AnyCall;
  #log: Logger | undefined;
  #controller: AbortController | undefined;
  #timer: NodeJS.Timeout | undefined;
  #onCancel: (() => void) | undefined;
  #onShutdown: (() => void) | undefined;
  #closed = false;
  readonly span: RpcSpan | undefined;

  constructor(deps: WrapDeps, method: MethodName, call: AnyCall) {
    this.#deps = deps;
    this.#method = method;
    this.#call = call;
    if (deps.tracing) {
      const md = call.metadata;
      const one = (k: string) => {
        const v = md.get(k)[0];
        return typeof v === 'string' ? v : undefined;
      };
      this.span = deps.tracing.startRpc(METHODS[method].service, method, one('traceparent'), one('tracestate'));
    }
  }

  /**
   * The handler's view. An object literal's getters are own enumerable properties,
   * so the `{ ...ctx, signal }` copies handlers make keep working.
   */
  opContext(): OpContext {
    const self = this;
    return {
      requestId: this.requestId,
      span: this.span,
      get log() {
        return self.log();
      },
      get signal() {
        return self.signal();
      },
    };
  }

  log(): Logger {
    return (this.#log ??= this.#deps.log.child({ req: this.requestId, rpc: this.#method }));
  }

  signal(): AbortSignal {
    return (this.#controller ??= this.#arm()).signal;
  }

  #arm(): AbortController {
    const controller = new AbortController();
    // One listener per process or wait under way: ListPodSandboxStats alone runs one per
    // pod at once. Each is removed when done, and the signal lives one call: no limit to warn about.
    setMaxListeners(0, controller.signal);
    if (this.#closed) {
      // The call has answered: nothing is left to wait for.
      controller.abort(new DOMException('the call has ended', 'AbortError'));
      return controller;
    }
    const call = this.#call;
    const deadline = call.getDeadline();
    const ms = deadline instanceof Date ? deadline.getTime() - Date.now() : Number(deadline) - Date.now();
    if (Number.isFinite(ms)) {
      this.#timer = setTimeout(
        () => controller.abort(new DOMException('deadline exceeded', 'TimeoutError')),
        Math.max(0, Math.min(ms, 2 ** 31 - 1)),
      );
    }
    const onCancel = (this.#onCancel = () => controller.abort(new DOMException('client cancelled the call', 'AbortError')));
    const onShutdown = (this.#onShutdown = () => controller.abort(new CricketError('Unavailable', 'cricketd is shutting down')));
    if (call.cancelled) onCancel();
    else call.on('cancelled', onCancel);
    if (this.#deps.shutdown.aborted) onShutdown();
    else this.#deps.shutdown.addEventListener('abort', onShutdown, { once: true });
    return controller;
  }

  /** The call is answering: stop the deadline timer and the listeners. */
  close(): void {
    this.#closed = true;
    if (!this.#controller) return;
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#onShutdown) this.#deps.shutdown.removeEventListener('abort', this.#onShutdown);
    // grpc-js emits 'cancelled' after every status it sends, cancelled or not.
    if (this.#onCancel) this.#call.off('cancelled', this.#onCancel);
  }
}

/**
 * Everything every RPC needs, written once: request id, one log line in and one out,
 * the deadline and client cancel as an AbortSignal, the readiness gate, and the
 * mapping of thrown errors to gRPC status (the only place that happens). A line below
 * the logger's level is never built.
 */
function openContext(deps: WrapDeps, method: MethodName, call: AnyCall) {
  const ctx = new CallContext(deps, method, call);
  const level = QUIET_METHODS.has(method) ? 'debug' : 'info';
  const logged = deps.log.isLevelEnabled(level);
  const started = process.hrtime.bigint();
  if (logged) ctx.log()[level]({ ids: idsOf(call.request) }, 'rpc start');
  const close = (err?: ServiceError | Partial<ServiceError>) => {
    ctx.close();
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    const code = err ? (err.code ?? 2) : 0;
    deps.metrics.rpc(method, code, ms / 1000);
    ctx.span?.endRpc(code, err?.details);
    if (err) {
      const errLevel = level === 'debug' && err.code !== 13 ? 'debug' : 'warn';
      if (!deps.log.isLevelEnabled(errLevel)) return;
      ctx.log()[errLevel]({ code: err.code, ms, error: err.details }, 'rpc failed');
    } else if (logged) {
      ctx.log()[level]({ ms }, 'rpc done');
    }
  };
  return { ctx: ctx.opContext(), close };
}

/** Ids in a request, for the log line. Never the whole request: it may hold credentials. */
function idsOf(req: unknown): Record<string, unknown> | undefined {
  if (!req || typeof req !== 'object') return undefined;
  const r = req as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const k of ['podSandboxId', 'containerId', 'imageId']) if (typeof r[k] === 'string' && r[k]) out[k] = r[k];
  const image = (r['image'] as { image?: unknown } | undefined)?.image;
  if (typeof image === 'string') out['image'] = image;
  const meta = (r['config'] as { metadata?: { name?: unknown } } | undefined)?.metadata?.name;
  if (typeof meta === 'string') out['name'] = meta;
  return Object.keys(out).length > 0 ? out : undefined;
}

function unary<M extends MethodName>(deps: WrapDeps, method: M, fn: UnaryHandler<M> | undefined): handleUnaryCall<any, any> {
  const codec = METHODS[method].response as unknown as { fromPartial(o: unknown): unknown };
  return (call, callback) => {
    const { ctx, close } = openContext(deps, method, call);
    (async () => {
      checkCall(deps, method, fn, call.request);
      return codec.fromPartial(await fn!(ctx, call.request as never));
    })().then(
      (res) => {
        close();
        callback(null, res);
      },
      (err: unknown) => {
        const se = toServiceError(err);
        logBug(ctx, err);
        close(se);
        callback(se as ServiceError);
      },
    );
  };
}

function stream<M extends MethodName>(
  deps: WrapDeps,
  method: M,
  fn: StreamHandler<M> | undefined,
): handleServerStreamingCall<any, any> {
  const codec = METHODS[method].response as unknown as { fromPartial(o: unknown): unknown };
  return (call) => {
    const { ctx, close } = openContext(deps, method, call);
    // Backpressure: wait for 'drain' when grpc-js's buffer is full so a slow client
    // cannot make the daemon buffer an unbounded stream.
    const send = (res: unknown) =>
      new Promise<void>((resolve, reject) => {
        if (ctx.signal.aborted) return reject(ctx.signal.reason);
        if (call.write(codec.fromPartial(res))) return resolve();
        const onDrain = () => {
          ctx.signal.removeEventListener('abort', onAbort);
          resolve();
        };
        const onAbort = () => {
          call.off('drain', onDrain);
          reject(ctx.signal.reason);
        };
        call.once('drain', onDrain);
        ctx.signal.addEventListener('abort', onAbort, { once: true });
      });
    (async () => {
      checkCall(deps, method, fn, call.request);
      await fn!(ctx, call.request as never, send as never);
    })().then(
      () => {
        close();
        call.end();
      },
      (err: unknown) => {
        const se = toServiceError(err);
        logBug(ctx, err);
        close(se);
        // grpc-js sends a server stream's status from its 'error' event; destroy() would
        // drop the status and leave the client waiting for its deadline.
        if (!call.cancelled) call.emit('error', se);
      },
    );
  };
}

function checkCall(deps: WrapDeps, method: MethodName, fn: unknown, request: unknown): void {
  if (request instanceof UndecodableRequest) {
    throw invalidArgument(`${method}: the request is not a valid runtime.v1 message: ${request.reason}`);
  }
  if (!fn) throw unimplemented(`${method} is not implemented by cricket yet`);
  if (!ALWAYS_READY.has(method)) deps.readiness.check(method);
}

function logBug(ctx: OpContext, err: unknown): void {
  // Errors outside our taxonomy are bugs: keep their stack for whoever reads the log.
  if (!(err instanceof CricketError)) ctx.log.error({ err }, 'unexpected error');
}

/** One grpc-js implementation object per service, every method wrapped. */
export function buildImplementations(deps: WrapDeps, handlers: Handlers): Record<string, Record<string, unknown>> {
  const impls: Record<string, Record<string, unknown>> = { RuntimeService: {}, ImageService: {} };
  for (const method of Object.keys(METHODS) as MethodName[]) {
    const m = METHODS[method];
    const key = method.charAt(0).toLowerCase() + method.slice(1);
    const fn = handlers[method] as never;
    impls[m.service]![key] = m.responseStream ? stream(deps, method, fn) : unary(deps, method, fn);
  }
  return impls;
}
