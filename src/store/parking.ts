/*
 * A create whose caller gave up (kubelet's deadline expired) is not undone: kubelet
 * retries with the same metadata, and the retry collects the same resource instead of
 * "name reserved" (CRI-O's resourcestore does the same). An entry's life, under the
 * name key of the resource:
 *
 *   park(key, work) ──► PARKED ──collect(key)──► handed to the retry (the retry awaits work)
 *                        │ │ │
 *                        │ │ └─ work rejects ──────► gone (a failed create has nothing to hand out)
 *                        │ └─── ttlMs passes ──────► gone, then discard(value) once work settles
 *                        └───── drop(key, value) ──► gone (the record was removed; not with outlivesRecord)
 *
 * Without ttlMs an entry waits until it is collected or dropped. Nothing is parked
 * across a restart: after a crash kubelet finds the resource by listing.
 */

export interface ParkOptions<T> {
  /** Uncollected for this long, the entry is given up and `discard` undoes it. */
  readonly ttlMs?: number;
  /**
   * Undoes an entry whose ttlMs passed, with the value its work settled on. Its errors
   * are ignored here: the caller logs them.
   */
  readonly discard?: (value: T) => Promise<void>;
  /** Keep the entry when the record it resolved to is removed (drop() leaves it). */
  readonly outlivesRecord?: boolean;
}

interface Entry<T> {
  readonly work: Promise<T>;
  /** What work settled on, once it did. */
  value?: T;
  timer?: NodeJS.Timeout;
  readonly outlivesRecord: boolean;
}

/** Parked creates by name key; `T` is what the retry is handed (an id). */
export class Parking<T> {
  readonly #parked = new Map<string, Entry<T>>();

  /** Parks finished work (a value) or work still running (a promise). Replaces an entry under the same key. */
  park(key: string, work: T | Promise<T>, opts: ParkOptions<T> = {}): void {
    const entry: Entry<T> = { work: Promise.resolve(work), outlivesRecord: opts.outlivesRecord ?? false };
    if (!(work instanceof Promise)) entry.value = work;
    this.#take(key);
    this.#parked.set(key, entry);
    if (opts.ttlMs !== undefined) {
      const discard = opts.discard;
      entry.timer = setTimeout(() => {
        if (this.#parked.get(key) !== entry) return;
        this.#parked.delete(key);
        if (discard) entry.work.then(discard).catch(() => {});
      }, opts.ttlMs);
      entry.timer.unref();
    }
    entry.work.then(
      (v) => {
        entry.value = v;
      },
      () => {
        if (this.#parked.get(key) === entry) this.#take(key);
      },
    );
  }

  /** The parked work for this key, taken out of the parking (its TTL no longer runs). */
  collect(key: string): Promise<T> | undefined {
    return this.#take(key)?.work;
  }

  /** The record `value` names was removed: forget its entry, unless that entry outlives its record. */
  drop(key: string, value: T): void {
    const e = this.#parked.get(key);
    if (e && !e.outlivesRecord && e.value === value) this.#take(key);
  }

  get size(): number {
    return this.#parked.size;
  }

  #take(key: string): Entry<T> | undefined {
    const e = this.#parked.get(key);
    if (!e) return undefined;
    clearTimeout(e.timer);
    this.#parked.delete(key);
    return e;
  }
}
