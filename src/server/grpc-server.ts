import { Server, ServerCredentials, type ServiceDefinition } from '@grpc/grpc-js';
import { ImageServiceService, RuntimeServiceService } from '../gen/runtime/v1/api.js';
import { CricketService } from '../gen/cricket/v1/cricket.js';
import type { CricketHandlers } from '../core/cricket-rpc.js';
import { cricketImplementation } from './cricket-service.js';
import { failedPrecondition } from '../core/errors.js';
import type { Handlers } from '../core/rpc.js';
import { UndecodableRequest } from './rpc-types.js';
import { buildImplementations, type WrapDeps } from './wrap.js';
import { prepareSocketPath, removeSocket, restrictSocket } from './socket-guard.js';
import { wireBytesOf } from '../core/wire-bytes.js';

/**
 * grpc-js answers a request that fails to decode with INTERNAL, which reads as our
 * bug. Decoding failures are the client's: the deserializer hands the wrapper a
 * marker instead, and the wrapper answers INVALID_ARGUMENT (see wrap.ts).
 */
function lenient(def: Record<string, { requestDeserialize: (b: Buffer) => unknown; responseSerialize: (v: never) => Buffer }>): ServiceDefinition {
  const out: Record<string, unknown> = {};
  for (const [key, method] of Object.entries(def)) {
    out[key] = {
      ...method,
      // A response that carries its bytes already (core/wire-bytes.ts) goes out as it is.
      responseSerialize: (v: unknown) => {
        const bytes = wireBytesOf(v);
        return bytes ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) : method.responseSerialize(v as never);
      },
      requestDeserialize: (b: Buffer) => {
        try {
          return method.requestDeserialize(b);
        } catch (err) {
          return new UndecodableRequest((err as Error).message);
        }
      },
    };
  }
  return out as unknown as ServiceDefinition;
}

export interface GrpcServerOptions {
  socketPath: string;
  maxMessageBytes: number;
}

/** The CRI gRPC server on a unix socket; start() binds, stop() drains then closes. */
export class CriServer {
  readonly #server: Server;
  readonly #opts: GrpcServerOptions;
  #bound = false;

  constructor(opts: GrpcServerOptions, deps: WrapDeps, handlers: Handlers, cricket: CricketHandlers = {}) {
    this.#opts = opts;
    this.#server = new Server({
      'grpc.max_receive_message_length': opts.maxMessageBytes,
      'grpc.max_send_message_length': opts.maxMessageBytes,
      // channelz (grpc-js's per-call introspection counters) is read by nothing here and
      // cost ~13 µs of every call.
      'grpc.enable_channelz': 0,
    });
    const impls = buildImplementations(deps, handlers);
    this.#server.addService(lenient(RuntimeServiceService), impls['RuntimeService'] as never);
    this.#server.addService(lenient(ImageServiceService), impls['ImageService'] as never);
    // Cricket's own service (cricket.v1: pull progress) on the same socket.
    this.#server.addService(lenient(CricketService), cricketImplementation(deps, cricket));
  }

  async start(): Promise<void> {
    await prepareSocketPath(this.#opts.socketPath);
    await new Promise<void>((resolve, reject) => {
      this.#server.bindAsync(`unix://${this.#opts.socketPath}`, ServerCredentials.createInsecure(), (err) => {
        if (err) reject(failedPrecondition(`cannot listen on ${this.#opts.socketPath}: ${err.message}`));
        else resolve();
      });
    });
    this.#bound = true;
    restrictSocket(this.#opts.socketPath);
  }

  /** Stops accepting calls and waits for in-flight ones, up to graceMs; then cuts them. */
  async stop(graceMs: number): Promise<void> {
    if (!this.#bound) return;
    this.#bound = false;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#server.forceShutdown();
        resolve();
      }, graceMs);
      this.#server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    removeSocket(this.#opts.socketPath);
  }

  forceStop(): void {
    this.#server.forceShutdown();
    // Only a socket we bound is ours to remove; a failed start leaves the path alone.
    if (this.#bound) removeSocket(this.#opts.socketPath);
    this.#bound = false;
  }
}
