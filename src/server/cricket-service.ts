import { randomBytes } from 'node:crypto';
import type { ServerWritableStream, ServiceError, UntypedServiceImplementation } from '@grpc/grpc-js';
import { CricketError, invalidArgument } from '../core/errors.js';
import type { CricketHandlers } from '../core/cricket-rpc.js';
import type { OpContext } from '../core/context.js';
import { PullProgress } from '../gen/cricket/v1/cricket.js';
import { PullImageRequest } from '../gen/runtime/v1/api.js';
import { toServiceError } from './status-map.js';
import { UndecodableRequest } from './rpc-types.js';
import type { WrapDeps } from './wrap.js';

/**
 * The cricket.v1 service's grpc-js implementation. wrap.ts serves the CRI methods of
 * gen/methods.ts; these few get the same treatment here: the readiness gate, a
 * context whose signal ends with the client, its deadline or the daemon, one log line
 * in and out, backpressure, and errors mapped by status-map.ts (still the only map).
 */
export function cricketImplementation(deps: WrapDeps, handlers: CricketHandlers): UntypedServiceImplementation {
  return {
    pullImageProgress: (call: ServerWritableStream<unknown, unknown>) => {
      const requestId = randomBytes(6).toString('hex');
      const log = deps.log.child({ req: requestId, rpc: 'cricket.v1.PullImageProgress' });
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
      const ctx: OpContext = { requestId, log, signal: ctl.signal };
      const send = (msg: unknown) =>
        new Promise<void>((resolve, reject) => {
          if (ctl.signal.aborted) return reject(ctl.signal.reason);
          if (call.write(PullProgress.fromPartial(msg as never))) return resolve();
          const onDrain = () => {
            ctl.signal.removeEventListener('abort', onAbort);
            resolve();
          };
          const onAbort = () => {
            call.off('drain', onDrain);
            reject(ctl.signal.reason);
          };
          call.once('drain', onDrain);
          ctl.signal.addEventListener('abort', onAbort, { once: true });
        });
      const end = () => {
        if (timer) clearTimeout(timer);
        call.off('cancelled', onCancel);
        deps.shutdown.removeEventListener('abort', onShutdown);
      };
      log.info('rpc start');
      (async () => {
        if (call.request instanceof UndecodableRequest) {
          throw invalidArgument(`PullImageProgress: the request is not a valid runtime.v1.PullImageRequest: ${call.request.reason}`);
        }
        const fn = handlers.PullImageProgress;
        if (!fn) throw new CricketError('Unimplemented', 'PullImageProgress is not implemented by this cricketd');
        deps.readiness.check('PullImageProgress');
        await fn(ctx, call.request as PullImageRequest, send);
      })().then(
        () => {
          end();
          log.info('rpc done');
          call.end();
        },
        (err: unknown) => {
          end();
          const se = toServiceError(err);
          if (!(err instanceof CricketError)) log.error({ err }, 'unexpected error');
          log.warn({ code: se.code, error: se.details }, 'rpc failed');
          if (!call.cancelled) call.emit('error', se as ServiceError);
        },
      );
    },
  };
}
