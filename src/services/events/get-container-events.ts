import type { ContainerEventResponse, DeepPartial } from '../../gen/runtime/v1/api.js';
import type { StreamHandler } from '../../core/rpc.js';
import type { EventBus } from './event-bus.js';

/** Per stream; past it the stream is ended so kubelet reconnects and relists. */
const MAX_QUEUE = 10_000;

export function makeGetContainerEvents(bus: EventBus): StreamHandler<'GetContainerEvents'> {
  return async (ctx, _req, send) => {
    const queue: DeepPartial<ContainerEventResponse>[] = [];
    let wake: (() => void) | undefined;
    let overflow = false;
    const unsubscribe = bus.subscribe((ev) => {
      if (queue.length >= MAX_QUEUE) overflow = true;
      else queue.push(ev);
      wake?.();
    });
    const onAbort = () => wake?.();
    ctx.signal.addEventListener('abort', onAbort);
    try {
      while (!ctx.signal.aborted && !overflow) {
        const ev = queue.shift();
        if (ev) {
          await send(ev);
          continue;
        }
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
      }
    } finally {
      unsubscribe();
      ctx.signal.removeEventListener('abort', onAbort);
    }
  };
}
