/**
 * Spans for tracing (OpenTelemetry, src/tracing/), as a port: the gRPC wrapper opens
 * one per RPC and puts it on the call's OpContext; the use cases open children for
 * what they call out to (CNI, the OCI runtime, conmon, registries). With tracing off
 * there is no span and every helper here is a no-op.
 */
export interface SpanHandle {
  /** A child span (e.g. "cni ADD", "runc start"), ended by the caller. */
  child(name: string, attributes?: Readonly<Record<string, string | number | boolean>>): SpanHandle;
  /** Ends the span; an error marks it failed with the error's message. */
  end(err?: unknown): void;
}

export interface Tracing {
  /**
   * A span for one RPC, continuing the caller's trace when its gRPC metadata carries a
   * W3C trace context (`traceparent`, `tracestate`).
   */
  startRpc(service: string, method: string, traceparent: string | undefined, tracestate: string | undefined): RpcSpan;
  /** Sends what is still buffered; called at shutdown. */
  shutdown(): Promise<void>;
}

export interface RpcSpan extends SpanHandle {
  /** Ends the RPC's span with its gRPC status code (0 = OK). */
  endRpc(grpcCode: number, message?: string): void;
}

/** Runs fn inside a child span of the context's span, if it has one. */
export async function inSpan<T>(
  ctx: { readonly span?: SpanHandle | undefined },
  name: string,
  attributes: Readonly<Record<string, string | number | boolean>>,
  fn: () => Promise<T>,
): Promise<T> {
  const span = ctx.span?.child(name, attributes);
  if (!span) return fn();
  try {
    const out = await fn();
    span.end();
    return out;
  } catch (err) {
    span.end(err ?? new Error('failed'));
    throw err;
  }
}
