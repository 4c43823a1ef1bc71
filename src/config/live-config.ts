import type { Config } from './schema.js';

/**
 * The running configuration, replaceable by a reload. `view` is what the daemon hands
 * its areas as `config`: each section is a getter over the current config, so code
 * that reads `config.runtime.handlers` at call time sees a reload at once, while each
 * config it is given stays frozen. (Values an area copied at start stay as they were:
 * those keys are the ones planReload() refuses to change live.)
 */
export class LiveConfig {
  #current: Readonly<Config>;
  #loadedAt = new Date();
  #reloads = 0;
  readonly view: Readonly<Config>;

  constructor(initial: Readonly<Config>) {
    this.#current = initial;
    const view: Record<string, unknown> = {};
    for (const section of Object.keys(initial)) {
      // Enumerable, so JSON.stringify(view) (Status verbose) prints the current config.
      Object.defineProperty(view, section, { enumerable: true, get: () => (this.#current as Record<string, unknown>)[section] });
    }
    this.view = Object.freeze(view) as unknown as Readonly<Config>;
  }

  get current(): Readonly<Config> {
    return this.#current;
  }

  /** Replaces the running config (already validated and frozen). */
  replace(next: Readonly<Config>): void {
    this.#current = next;
    this.#loadedAt = new Date();
    this.#reloads++;
  }

  /** When the running config was loaded, and how many reloads made it. */
  info(): { loadedAt: string; reloads: number } {
    return { loadedAt: this.#loadedAt.toISOString(), reloads: this.#reloads };
  }
}
