/**
 * Identical concurrent requests share one promise (one pull of an image, one
 * download of a blob). The entry is dropped when the promise settles, so a later
 * call after a failure starts afresh.
 */
export class SingleFlight<T> {
  #inflight = new Map<string, Promise<T>>();

  run(key: string, fn: () => Promise<T>): Promise<T> {
    const existing = this.#inflight.get(key);
    if (existing) return existing;
    const p = fn().finally(() => this.#inflight.delete(key));
    this.#inflight.set(key, p);
    return p;
  }

  has(key: string): boolean {
    return this.#inflight.has(key);
  }
}
