import { Client, credentials, Metadata, status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import type { DeepPartial } from '../gen/runtime/v1/api.js';
import { METHODS, type MethodName } from '../gen/methods.js';

export type ReqOf<M extends MethodName> = ReturnType<(typeof METHODS)[M]['request']['decode']>;
export type ResOf<M extends MethodName> = ReturnType<(typeof METHODS)[M]['response']['decode']>;

export const DEFAULT_ENDPOINT = 'unix:///run/cricket/cricket.sock';

export interface CallOptions {
  /** Deadline for the call, like kubelet's per-RPC timeouts. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** gRPC metadata to send, e.g. a W3C `traceparent` as kubelet sends it. */
  metadata?: Readonly<Record<string, string>>;
}

/** A gRPC error with its status code, as any CRI client sees it. */
export class CriCallError extends Error {
  readonly code: GrpcStatus;
  readonly details: string;
  constructor(method: string, err: ServiceError) {
    super(`${method}: ${GrpcStatus[err.code] ?? err.code}: ${err.details}`);
    this.name = 'CriCallError';
    this.code = err.code;
    this.details = err.details;
  }
}

/**
 * A CRI v1 client for any endpoint (cricketd, containerd, CRI-O): typed by method
 * name, with partial requests filled with proto defaults before sending.
 */
export class CriClient {
  readonly endpoint: string;
  readonly #client: Client;

  constructor(endpoint: string = DEFAULT_ENDPOINT, opts: { maxMessageBytes?: number } = {}) {
    this.endpoint = endpoint.includes('://') ? endpoint : `unix://${endpoint}`;
    const max = opts.maxMessageBytes ?? 64 << 20;
    this.#client = new Client(this.endpoint, credentials.createInsecure(), {
      'grpc.max_receive_message_length': max,
      'grpc.max_send_message_length': max,
    });
  }

  call<M extends MethodName>(method: M, req: DeepPartial<ReqOf<M>> = {} as never, opts: CallOptions = {}): Promise<ResOf<M>> {
    const w = wire(method, req);
    if (METHODS[method].responseStream) return Promise.reject(new Error(`${method} is a streaming RPC: use stream()`));
    return new Promise((resolve, reject) => {
      // The listener goes when the call ends: a long-lived signal shared by many calls
      // (a soak's, a CLI session's) must not collect one per call.
      const onAbort = () => call.cancel();
      const call = this.#client.makeUnaryRequest(
        w.path,
        w.serialize,
        w.deserialize,
        w.request,
        metadataOf(opts),
        { deadline: deadlineOf(opts) },
        (err, res) => {
          opts.signal?.removeEventListener('abort', onAbort);
          if (err) reject(new CriCallError(method, err));
          else resolve(res as ResOf<M>);
        },
      );
      opts.signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** A server-streaming RPC as an async iterator; breaking out of the loop cancels it. */
  async *stream<M extends MethodName>(
    method: M,
    req: DeepPartial<ReqOf<M>> = {} as never,
    opts: CallOptions = {},
  ): AsyncGenerator<ResOf<M>> {
    const w = wire(method, req);
    const call = this.#client.makeServerStreamRequest(w.path, w.serialize, w.deserialize, w.request, metadataOf(opts), {
      deadline: deadlineOf(opts),
    });
    const onAbort = () => call.cancel();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      for await (const msg of call) yield msg as ResOf<M>;
    } catch (err) {
      const se = err as ServiceError;
      if (typeof se.code === 'number') throw new CriCallError(method, se);
      throw err;
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
      call.cancel();
    }
  }

  /** Waits until the socket accepts a connection, or throws after timeoutMs. */
  waitForReady(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) =>
      this.#client.waitForReady(Date.now() + timeoutMs, (err) => (err ? reject(err) : resolve())),
    );
  }

  close(): void {
    this.#client.close();
  }
}

interface Codec {
  encode(v: unknown): { finish(): Uint8Array };
  decode(b: Uint8Array): unknown;
  fromPartial(v: unknown): unknown;
}

/** How one method's messages go on the wire; partial requests get proto defaults. */
function wire(method: MethodName, req: unknown) {
  const m = METHODS[method];
  const reqCodec = m.request as unknown as Codec;
  const resCodec = m.response as unknown as Codec;
  return {
    path: m.path,
    serialize: (v: unknown) => Buffer.from(reqCodec.encode(v).finish()),
    deserialize: (b: Buffer) => resCodec.decode(b),
    request: reqCodec.fromPartial(req),
  };
}

function metadataOf(opts: CallOptions): Metadata {
  const md = new Metadata();
  for (const [k, v] of Object.entries(opts.metadata ?? {})) md.set(k, v);
  return md;
}

function deadlineOf(opts: CallOptions): number {
  return opts.timeoutMs === undefined ? Infinity : Date.now() + opts.timeoutMs;
}
