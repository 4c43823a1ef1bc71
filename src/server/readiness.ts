import { unavailable } from '../core/errors.js';

/**
 *   starting ──recovered──▶ serving ──signal──▶ draining
 *
 * Until recovery has reloaded every record, answers could contradict what is on
 * disk, so every RPC but Version is refused as UNAVAILABLE (kubelet retries).
 */
export class Readiness {
  #state: 'starting' | 'serving' | 'draining' = 'starting';

  get state() {
    return this.#state;
  }

  markServing(): void {
    if (this.#state === 'starting') this.#state = 'serving';
  }

  markDraining(): void {
    this.#state = 'draining';
  }

  check(method: string): void {
    if (this.#state === 'starting') throw unavailable(`${method}: cricketd is recovering its state after a restart; retry shortly`);
    if (this.#state === 'draining') throw unavailable(`${method}: cricketd is shutting down`);
  }
}
