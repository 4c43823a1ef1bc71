/**
 * kubelet's crash-loop back-off: 10 s after the first exit, doubling to 5 min; a
 * container that ran 10 min before exiting starts again from 10 s.
 */
export const BACKOFF_INITIAL_MS = 10_000;
export const BACKOFF_MAX_MS = 300_000;
export const BACKOFF_RESET_AFTER_MS = 600_000;

/** How long after its exit a container that has restarted `restarts` times may start again. */
export function restartDelayMs(restarts: number, ranMs: number): number {
  if (ranMs >= BACKOFF_RESET_AFTER_MS) return BACKOFF_INITIAL_MS;
  return Math.min(BACKOFF_INITIAL_MS * 2 ** Math.max(0, restarts), BACKOFF_MAX_MS);
}
