import type { Logger } from 'pino';
import type { SpanHandle } from './tracing.js';

/**
 * What every service function receives first: who is asking (request id), where to
 * log, and when to give up (the gRPC deadline or a client cancel, as an AbortSignal).
 */
export interface OpContext {
  readonly requestId: string;
  readonly log: Logger;
  readonly signal: AbortSignal;
  /** The call's trace span, when tracing is on (children go under it). */
  readonly span?: SpanHandle | undefined;
}

/** A context for work the daemon starts itself (recovery, background GC). */
export function backgroundContext(log: Logger, requestId: string, signal?: AbortSignal): OpContext {
  return { requestId, log: log.child({ req: requestId }), signal: signal ?? new AbortController().signal };
}
