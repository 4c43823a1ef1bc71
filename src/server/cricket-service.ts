import { randomBytes } from 'node:crypto';
import type { sendUnaryData, ServerUnaryCall, ServerWritableStream, ServiceError, UntypedServiceImplementation } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { CricketError, invalidArgument } from '../core/errors.js';
import type { CricketHandlers } from '../core/cricket-rpc.js';
import type { OpContext } from '../core/context.js';
import { PlayReply, PlayStatusReply, PullProgress } from '../gen/cricket/v1/cricket.js';
import { toServiceError } from './status-map.js';
import { UndecodableRequest } from './rpc-types.js';
import type { WrapDeps } from './wrap.js';

type AnyCall = ServerUnaryCall<unknown, unknown> | ServerWritableStream<unknown, unknown>;

/**
 * One call's context: a signal that ends with the client, its deadline or the
 * daemon; close() drops the timer and listeners.
 */
function openCall(deps: WrapDeps, method: string, call: AnyCall): { ctx: OpContext; log: Logger; close(): void } {
  const requestId = randomBytes(6).toString('hex');
  const log = deps.log.child({ req: requestId, rpc: `cricket.v1.${method}` });
  const ctl = new AbortController();
  const onCancel = () => ctl.abort(new DOMException('client cancelled the call', 'AbortError'));
  const onShutdown = () => ctl.abort(new CricketError('Unavailable', 'cricketd is shutting down'));
  call.on('cancelled', onCancel);
  deps.shutdown.addEventListener('abort', onShutdown, { once: true });
  const deadline = call.getDeadline();
  const ms = (deadline instanceof Date ? deadline.getTime() : Number(deadline)) - Date.now();
  const timer = Number.isFinite(ms)
    ? setTimeout(() => ctl.abort(new DOMException('deadline exceeded', 'TimeoutError')), Math.max(0, Math.min(ms, 2 ** 31 - 1)))
    : undefined;
  return {
    ctx: { requestId, log, signal: ctl.signal },
    log,
    close() {
      if (timer) clearTimeout(timer);
      call.off('cancelled', onCancel);
      deps.shutdown.removeEventListener('abort', onShutdown);
    },
  };
}

function check(deps: WrapDeps, method: string, fn: unknown, request: unknown): void {
  if (request instanceof UndecodableRequest) throw invalidArgument(`${method}: the request is not a valid cricket.v1 message: ${request.reason}`);
  if (!fn) throw new CricketError('Unimplemented', `${method} is not implemented by this cricketd`);
  deps.readiness.check(method);
}

function failed(log: Logger, err: unknown): Partial<ServiceError> {
  const se = toServiceError(err);
  if (!(err instanceof CricketError)) log.error({ err }, 'unexpected error');
  log.warn({ code: se.code, error: se.details }, 'rpc failed');
  return se;
}

function unary<Req, Res>(
  deps: WrapDeps,
  method: string,
  fn: ((ctx: OpContext, req: Req) => Promise<unknown>) | undefined,
  codec: { fromPartial(o: never): Res },
) {
  return (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
    const { ctx, log, close } = openCall(deps, method, call);
    (async () => {
      check(deps, method, fn, call.request);
      return codec.fromPartial((await fn!(ctx, call.request as Req)) as never);
    })().then(
      (res) => {
        close();
        callback(null, res);
      },
      (err: unknown) => {
        close();
        callback(failed(log, err) as ServiceError);
      },
    );
  };
}

/**
 * The cricket.v1 service's grpc-js implementation. wrap.ts serves the CRI methods of
 * gen/methods.ts; these get the same treatment here: the readiness gate, a context
 * whose signal ends with the client, its deadline or the daemon, backpressure on
 * streams, and errors mapped by status-map.ts (still the only map).
 */
export function cricketImplementation(deps: WrapDeps, handlers: CricketHandlers): UntypedServiceImplementation {
  return {
    playApply: unary(deps, 'PlayApply', handlers.PlayApply, PlayReply),
    playDown: unary(deps, 'PlayDown', handlers.PlayDown, PlayReply),
    playStatus: unary(deps, 'PlayStatus', handlers.PlayStatus, PlayStatusReply),
    pullImageProgress: (call: ServerWritableStream<unknown, unknown>) => {
      const { ctx, log, close } = openCall(deps, 'PullImageProgress', call);
      const signal = ctx.signal;
      const send = (msg: unknown) =>
        new Promise<void>((resolve, reject) => {
          if (signal.aborted) return reject(signal.reason);
          if (call.write(PullProgress.fromPartial(msg as never))) return resolve();
          const onDrain = () => {
            signal.removeEventListener('abort', onAbort);
            resolve();
          };
          const onAbort = () => {
            call.off('drain', onDrain);
            reject(signal.reason);
          };
          call.once('drain', onDrain);
          signal.addEventListener('abort', onAbort, { once: true });
        });
      log.info('rpc start');
      (async () => {
        const fn = handlers.PullImageProgress;
        check(deps, 'PullImageProgress', fn, call.request);
        await fn!(ctx, call.request as never, send);
      })().then(
        () => {
          close();
          log.info('rpc done');
          call.end();
        },
        (err: unknown) => {
          close();
          const se = failed(log, err);
          if (!call.cancelled) call.emit('error', se as ServiceError);
        },
      );
    },
  };
}
