import { randomBytes } from 'node:crypto';
import { resourceExhausted } from '../core/errors.js';

/**
 * One-time tokens for the streaming URLs. Exec/Attach/PortForward park their request
 * here and return a URL naming the token; the HTTP request that follows takes it out
 * exactly once. A token is 32 random bytes (base64url), so URLs cannot be guessed;
 * unused ones expire after the TTL; the number parked at once is bounded so a caller
 * hammering Exec cannot grow our memory.
 */
export class TokenStore<T> {
  readonly #entries = new Map<string, { value: T; expires: number }>();
  readonly #ttlMs: number;
  readonly #max: number;
  readonly #now: () => number;

  constructor(opts: { ttlMs: number; max: number; now?: () => number }) {
    this.#ttlMs = opts.ttlMs;
    this.#max = opts.max;
    this.#now = opts.now ?? Date.now;
  }

  get size(): number {
    this.#sweep();
    return this.#entries.size;
  }

  /** Parks a request; throws ResourceExhausted when too many are waiting. */
  issue(value: T): string {
    this.#sweep();
    if (this.#entries.size >= this.#max) {
      throw resourceExhausted(
        `too many streaming requests are waiting to be used (${this.#max}); connect to the URLs already issued or wait ${Math.ceil(this.#ttlMs / 1000)} s for them to expire`,
      );
    }
    let token: string;
    do token = randomBytes(32).toString('base64url');
    while (this.#entries.has(token));
    this.#entries.set(token, { value, expires: this.#now() + this.#ttlMs });
    return token;
  }

  /** Takes a token out: its request, or undefined if unknown, used or expired. */
  consume(token: string): T | undefined {
    const e = this.#entries.get(token);
    if (!e) return undefined;
    this.#entries.delete(token);
    if (e.expires <= this.#now()) return undefined;
    return e.value;
  }

  #sweep(): void {
    const now = this.#now();
    // Map iteration is insertion order and every entry has the same TTL, so the
    // expired ones are at the front.
    for (const [k, e] of this.#entries) {
      if (e.expires > now) break;
      this.#entries.delete(k);
    }
  }

  clear(): void {
    this.#entries.clear();
  }
}
