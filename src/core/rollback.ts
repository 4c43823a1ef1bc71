import type { Logger } from 'pino';

/**
 * Undo steps for a multi-step RPC. Push a named step after each side effect
 * succeeds; on failure call unwind() to run them newest first. A failing undo step
 * is logged and the rest still run, so one stuck cleanup does not leak the others.
 */
export class Rollback {
  #steps: { name: string; undo: () => Promise<void> | void }[] = [];

  push(name: string, undo: () => Promise<void> | void): void {
    this.#steps.push({ name, undo });
  }

  /** Forget the steps: the operation succeeded. */
  commit(): void {
    this.#steps = [];
  }

  async unwind(log: Logger): Promise<void> {
    while (this.#steps.length > 0) {
      const step = this.#steps.pop()!;
      try {
        await step.undo();
      } catch (err) {
        log.warn({ err, step: step.name }, 'rollback step failed');
      }
    }
  }

  get names(): string[] {
    return this.#steps.map((s) => s.name);
  }
}

/** Runs fn with a fresh Rollback, unwinding it if fn throws. */
export async function withRollback<T>(log: Logger, fn: (rb: Rollback) => Promise<T>): Promise<T> {
  const rb = new Rollback();
  try {
    const result = await fn(rb);
    rb.commit();
    return result;
  } catch (err) {
    await rb.unwind(log);
    throw err;
  }
}
