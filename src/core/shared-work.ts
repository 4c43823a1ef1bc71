import { abortError } from './errors.js';

/**
 * Like SingleFlight, but the shared work has its own AbortSignal that fires only
 * when every caller waiting on it has given up: one impatient kubelet retry must
 * not cancel a download another pull is still waiting for.
 */
export class SharedWork<T> {
  readonly #inflight = new Map<string, { promise: Promise<T>; ctl: AbortController; waiters: number }>();

  run(key: string, signal: AbortSignal, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (signal.aborted) return Promise.reject(abortError(signal, key));
    let entry = this.#inflight.get(key);
    if (!entry) {
      const ctl = new AbortController();
      const e = { promise: Promise.resolve() as Promise<T>, ctl, waiters: 0 };
      e.promise = fn(ctl.signal).finally(() => {
        if (this.#inflight.get(key) === e) this.#inflight.delete(key);
      });
      e.promise.catch(() => {}); // every waiter observes it; no unhandled rejection when all left
      this.#inflight.set(key, e);
      entry = e;
    }
    const e = entry;
    e.waiters++;
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const onAbort = () => {
        if (settled) return;
        settled = true;
        if (--e.waiters === 0) e.ctl.abort(signal.reason);
        reject(abortError(signal, key));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      e.promise.then(
        (v) => {
          signal.removeEventListener('abort', onAbort);
          if (settled) return;
          settled = true;
          e.waiters--;
          resolve(v);
        },
        (err: unknown) => {
          signal.removeEventListener('abort', onAbort);
          if (settled) return;
          settled = true;
          e.waiters--;
          reject(err);
        },
      );
    });
  }

  get size(): number {
    return this.#inflight.size;
  }
}

/** At most `limit` tasks at once; the rest queue in order. */
export class Limiter {
  #active = 0;
  readonly #queue: (() => void)[] = [];

  constructor(readonly limit: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    // A finishing task hands its slot straight to the next waiter, so a newcomer
    // cannot slip in between and exceed the limit.
    if (this.#active >= this.limit) await new Promise<void>((r) => this.#queue.push(r));
    else this.#active++;
    try {
      return await fn();
    } finally {
      const next = this.#queue.shift();
      if (next) next();
      else this.#active--;
    }
  }
}
