import type { ContainerEventResponse, DeepPartial } from '../../gen/runtime/v1/api.js';

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
