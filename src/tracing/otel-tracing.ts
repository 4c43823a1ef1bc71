import { context as otelContext, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Span, type Tracer } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { RpcSpan, SpanHandle, Tracing } from '../core/tracing.js';

export interface OtelOptions {
  /** OTLP/HTTP traces endpoint, e.g. http://127.0.0.1:4318/v1/traces. */
  endpoint: string;
  serviceName: string;
  serviceVersion: string;
  /** Longest a batch waits before it is sent. */
  exportDelayMs?: number;
}

const propagator = new W3CTraceContextPropagator();
const getter = {
  keys: (c: Record<string, string>) => Object.keys(c),
  get: (c: Record<string, string>, k: string) => c[k],
};

class Handle implements RpcSpan {
  constructor(
    readonly tracer: Tracer,
    readonly span: Span,
  ) {}

  child(name: string, attributes?: Readonly<Record<string, string | number | boolean>>): SpanHandle {
    const parent = trace.setSpan(ROOT_CONTEXT, this.span);
    return new Handle(this.tracer, this.tracer.startSpan(name, { kind: SpanKind.CLIENT, ...(attributes ? { attributes } : {}) }, parent));
  }

  end(err?: unknown): void {
    if (err !== undefined) {
      this.span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message.slice(0, 500) : String(err) });
    }
    this.span.end();
  }

  endRpc(grpcCode: number, message?: string): void {
    this.span.setAttribute('rpc.grpc.status_code', grpcCode);
    if (grpcCode !== 0) this.span.setStatus({ code: SpanStatusCode.ERROR, ...(message ? { message: message.slice(0, 500) } : {}) });
    this.span.end();
  }
}

/**
 * OpenTelemetry spans exported in batches over OTLP/HTTP (JSON). One SERVER span per
 * RPC, named as gRPC spans are (runtime.v1.RuntimeService/RunPodSandbox), continuing
 * a W3C trace context from the call's metadata; CLIENT children for what the RPC
 * calls out to. Parents are passed explicitly (OpContext.span), so no async context
 * tracking runs on every call.
 */
export class OtelTracing implements Tracing {
  readonly #provider: BasicTracerProvider;
  readonly #tracer: Tracer;

  constructor(o: OtelOptions) {
    const exporter = new OTLPTraceExporter({ url: o.endpoint, timeoutMillis: 10_000 });
    this.#provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ 'service.name': o.serviceName, 'service.version': o.serviceVersion }),
      spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: o.exportDelayMs ?? 1000 })],
    });
    this.#tracer = this.#provider.getTracer('cricketd', o.serviceVersion);
  }

  startRpc(service: string, method: string, traceparent: string | undefined, tracestate: string | undefined): RpcSpan {
    const carrier: Record<string, string> = {};
    if (traceparent) carrier['traceparent'] = traceparent;
    if (tracestate) carrier['tracestate'] = tracestate;
    const parent = traceparent ? propagator.extract(ROOT_CONTEXT, carrier, getter) : ROOT_CONTEXT;
    const span = this.#tracer.startSpan(
      `runtime.v1.${service}/${method}`,
      { kind: SpanKind.SERVER, attributes: { 'rpc.system': 'grpc', 'rpc.service': `runtime.v1.${service}`, 'rpc.method': method } },
      parent,
    );
    return new Handle(this.#tracer, span);
  }

  async shutdown(): Promise<void> {
    await otelContext.with(ROOT_CONTEXT, () => this.#provider.shutdown());
  }
}
