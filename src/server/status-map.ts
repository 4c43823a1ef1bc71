import { status as GrpcStatus, Metadata, type ServiceError } from '@grpc/grpc-js';
import { CricketError, type ErrorCode } from '../core/errors.js';

// The only place a Cricket error code becomes a gRPC status code.
const CODE_MAP: Record<ErrorCode, GrpcStatus> = {
  NotFound: GrpcStatus.NOT_FOUND,
  AlreadyExists: GrpcStatus.ALREADY_EXISTS,
  InvalidArgument: GrpcStatus.INVALID_ARGUMENT,
  FailedPrecondition: GrpcStatus.FAILED_PRECONDITION,
  ResourceExhausted: GrpcStatus.RESOURCE_EXHAUSTED,
  Unavailable: GrpcStatus.UNAVAILABLE,
  DeadlineExceeded: GrpcStatus.DEADLINE_EXCEEDED,
  Canceled: GrpcStatus.CANCELLED,
  Unimplemented: GrpcStatus.UNIMPLEMENTED,
  Internal: GrpcStatus.INTERNAL,
  Unknown: GrpcStatus.UNKNOWN,
};

export function grpcCodeOf(code: ErrorCode): GrpcStatus {
  return CODE_MAP[code];
}

/** Any thrown value → the status a client sees. Non-Cricket errors are bugs: INTERNAL. */
export function toServiceError(err: unknown): Partial<ServiceError> {
  const e =
    err instanceof CricketError
      ? err
      : new CricketError('Internal', `internal error: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  // Status details travel in an HTTP/2 trailer: keep them one line and bounded.
  const details = e.message.replace(/[\r\n]+/g, ' ').slice(0, 8192);
  return { code: CODE_MAP[e.code], details, metadata: new Metadata() };
}
