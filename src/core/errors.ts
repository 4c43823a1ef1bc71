// The one error taxonomy of Cricket. Every layer below server/ throws CricketError
// (or lets a foreign error be wrapped into one); only server/status-map.ts turns a
// code into a gRPC status. Keep this set closed: a new code means a new mapping.

export const ERROR_CODES = [
  'NotFound',
  'AlreadyExists',
  'InvalidArgument',
  'FailedPrecondition',
  'ResourceExhausted',
  'Unavailable',
  'DeadlineExceeded',
  'Canceled',
  'Unimplemented',
  'Internal',
  // Only for the typed pull failures kubelet recognises by message prefix
  // (RegistryUnavailable, SignatureValidationFailed): those travel as gRPC UNKNOWN.
  'Unknown',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export interface ErrorOptions {
  cause?: unknown;
  /** Facts for the log line, never secrets. */
  details?: Record<string, unknown>;
}

export class CricketError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, opts: ErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'CricketError';
    this.code = code;
    this.details = opts.details;
  }
}

/** A child process that failed: its exit code and the end of what it printed. */
export class ProcessError extends CricketError {
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly stderrTail: string;

  constructor(
    command: string,
    result: { exitCode: number | null; signal: string | null; stderr: string },
    code: ErrorCode = 'Internal',
  ) {
    const how = result.signal ? `killed by ${result.signal}` : `exit code ${result.exitCode}`;
    const tail = result.stderr.trim().slice(-2000);
    super(code, `${command} failed (${how})${tail ? `: ${tail}` : ''}`, {
      details: { command, exitCode: result.exitCode, signal: result.signal },
    });
    this.name = 'ProcessError';
    this.exitCode = result.exitCode;
    this.signal = result.signal;
    this.stderrTail = tail;
  }
}

export const notFound = (msg: string, opts?: ErrorOptions) => new CricketError('NotFound', msg, opts);
export const alreadyExists = (msg: string, opts?: ErrorOptions) => new CricketError('AlreadyExists', msg, opts);
export const invalidArgument = (msg: string, opts?: ErrorOptions) => new CricketError('InvalidArgument', msg, opts);
export const failedPrecondition = (msg: string, opts?: ErrorOptions) =>
  new CricketError('FailedPrecondition', msg, opts);
export const resourceExhausted = (msg: string, opts?: ErrorOptions) =>
  new CricketError('ResourceExhausted', msg, opts);
export const unavailable = (msg: string, opts?: ErrorOptions) => new CricketError('Unavailable', msg, opts);
export const unimplemented = (msg: string, opts?: ErrorOptions) => new CricketError('Unimplemented', msg, opts);
export const internal = (msg: string, opts?: ErrorOptions) => new CricketError('Internal', msg, opts);

/** Turns an abort reason (deadline or client cancel) into the matching error. */
export function abortError(signal: AbortSignal, action: string): CricketError {
  const reason = signal.reason;
  if (reason instanceof CricketError) return reason;
  const timedOut = reason instanceof Error && reason.name === 'TimeoutError';
  return new CricketError(timedOut ? 'DeadlineExceeded' : 'Canceled', `${action}: ${timedOut ? 'deadline exceeded' : 'canceled'}`, {
    cause: reason,
  });
}

/**
 * Prefixes an error with the action that was being attempted, keeping its code.
 * Foreign errors become Internal unless they are an AbortError (Canceled) or a
 * Node errno we can classify.
 */
export function wrap(err: unknown, action: string, fallback: ErrorCode = 'Internal'): CricketError {
  if (err instanceof CricketError) {
    const e = new CricketError(err.code, `${action}: ${err.message}`, { cause: err, details: err.details });
    return e;
  }
  const message = err instanceof Error ? err.message : String(err);
  return new CricketError(classifyForeign(err) ?? fallback, `${action}: ${message}`, { cause: err });
}

function classifyForeign(err: unknown): ErrorCode | undefined {
  if (!(err instanceof Error)) return undefined;
  if (err.name === 'AbortError') return 'Canceled';
  if (err.name === 'TimeoutError') return 'DeadlineExceeded';
  const code = (err as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT':
      return 'NotFound';
    case 'EEXIST':
      return 'AlreadyExists';
    case 'ENOSPC':
    case 'EMFILE':
    case 'ENFILE':
      return 'ResourceExhausted';
    default:
      return undefined;
  }
}

export function isCode(err: unknown, code: ErrorCode): boolean {
  return err instanceof CricketError && err.code === code;
}
