import { ContainerEventType, type ContainerEventResponse, type DeepPartial } from '../../gen/runtime/v1/api.js';
import type { StreamHandler } from '../../server/rpc-types.js';

type Listener = (ev: DeepPartial<ContainerEventResponse>) => void;

/**
 * Fan-out of lifecycle events to every GetContainerEvents stream (kubelet's evented
 * PLEG). A slow stream gets a bounded queue; past it the stream is ended so kubelet
 * reconnects and relists rather than the daemon buffering without bound.
 */
export class EventBus {
  readonly #listeners = new Set<Listener>();

  publish(ev: DeepPartial<ContainerEventResponse>): void {
    for (const l of this.#listeners) l(ev);
  }

  subscribe(l: Listener): () => void {
    this.#listeners.add(l);
    return () => this.#listeners.delete(l);
  }

  get size(): number {
    return this.#listeners.size;
  }
}

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

export { ContainerEventType };
