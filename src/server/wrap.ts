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
}

type AnyCall = ServerUnaryCall<unknown, unknown> | ServerWritableStream<unknown, unknown>;

/**
 * Everything every RPC needs, written once: request id, one log line in and one out,
 * the deadline and client cancel as an AbortSignal, the readiness gate, and the
 * mapping of thrown errors to gRPC status (the only place that happens).
 */
function openContext(deps: WrapDeps, method: MethodName, call: AnyCall) {
  const requestId = randomBytes(6).toString('hex');
  const log = deps.log.child({ req: requestId, rpc: method });
  const controller = new AbortController();
  // One listener per process or wait under way: ListPodSandboxStats alone runs one per pod at
  // once. Each is removed when done, and the signal lives one call: no limit to warn about.
  setMaxListeners(0, controller.signal);
  const deadline = call.getDeadline();
  const ms = deadline instanceof Date ? deadline.getTime() - Date.now() : Number(deadline) - Date.now();
  let timer: NodeJS.Timeout | undefined;
  if (Number.isFinite(ms)) {
    timer = setTimeout(
      () => controller.abort(new DOMException('deadline exceeded', 'TimeoutError')),
      Math.max(0, Math.min(ms, 2 ** 31 - 1)),
    );
  }
  const onCancel = () => controller.abort(new DOMException('client cancelled the call', 'AbortError'));
  call.on('cancelled', onCancel);
  const onShutdown = () => controller.abort(new CricketError('Unavailable', 'cricketd is shutting down'));
  if (deps.shutdown.aborted) onShutdown();
  else deps.shutdown.addEventListener('abort', onShutdown, { once: true });
  const ctx: OpContext = { requestId, log, signal: controller.signal };
  const level = QUIET_METHODS.has(method) ? 'debug' : 'info';
  const started = process.hrtime.bigint();
  log[level]({ ids: idsOf(call.request) }, 'rpc start');
  const close = (err?: ServiceError | Partial<ServiceError>) => {
    if (timer) clearTimeout(timer);
    deps.shutdown.removeEventListener('abort', onShutdown);
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    if (err) log[level === 'debug' && err.code !== 13 ? 'debug' : 'warn']({ code: err.code, ms, error: err.details }, 'rpc failed');
    else log[level]({ ms }, 'rpc done');
  };
  return { ctx, close };
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
