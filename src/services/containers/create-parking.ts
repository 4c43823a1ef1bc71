import type { Logger } from 'pino';

/** How long a create that outlived its caller waits for kubelet's retry before it is undone. */
const PARK_TTL_MS = 5 * 60_000;

/**
 * kubelet gives CreateContainer a deadline; when it expires mid-create, kubelet retries
 * with the same name and attempt. Rather than undo the work and then fail the retry
 * with "name reserved", the create carries on detached and is parked here under its
 * name key; the retry collects the same container id (as CRI-O does). A parked result
 * nobody collects is removed after a while.
 */
export class ParkedCreates {
  readonly #parked = new Map<string, { work: Promise<string>; timer: NodeJS.Timeout }>();
  readonly #log: Logger;

  constructor(log: Logger) {
    this.#log = log;
  }

  park(key: string, work: Promise<string>, discard: (id: string) => Promise<void>): void {
    const timer = setTimeout(() => {
      if (this.#parked.get(key)?.work !== work) return;
      this.#parked.delete(key);
      work.then(discard).catch((err: unknown) => this.#log.warn({ err, key }, 'cannot discard an uncollected container create'));
    }, PARK_TTL_MS);
    timer.unref();
    this.#parked.set(key, { work, timer });
    // A create that failed after its caller left has nothing to hand out.
    work.catch(() => {
      if (this.#parked.get(key)?.work === work) {
        clearTimeout(timer);
        this.#parked.delete(key);
      }
    });
  }

  /** The parked create for this name key, taken out of the parking. */
  collect(key: string): Promise<string> | undefined {
    const p = this.#parked.get(key);
    if (!p) return undefined;
    clearTimeout(p.timer);
    this.#parked.delete(key);
    return p.work;
  }
}
