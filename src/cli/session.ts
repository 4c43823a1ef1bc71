import { CricketClient } from '../client/cricket-client.js';
import { CriClient, DEFAULT_ENDPOINT, type ReqOf, type ResOf } from '../client/cri-client.js';
import type { DeepPartial } from '../gen/runtime/v1/api.js';
import type { MethodName } from '../gen/methods.js';
import { UsageError } from './exit-codes.js';

/** The options every command takes (crictl's names: -r/--runtime-endpoint, -t/--timeout). */
export interface GlobalOptions {
  runtimeEndpoint?: string;
  endpoint?: string;
  timeout?: string;
}

/**
 * One CLI run's connection to the runtime: the endpoint from -r, else
 * CONTAINER_RUNTIME_ENDPOINT (as crictl reads it), else the default socket; clients
 * made on first use so `--help` and `completion` never connect.
 */
export class Session {
  readonly endpoint: string;
  readonly timeoutMs: number;
  readonly env: NodeJS.ProcessEnv;
  #cri: CriClient | undefined;
  #cricket: CricketClient | undefined;

  constructor(g: GlobalOptions, env: NodeJS.ProcessEnv) {
    this.env = env;
    this.endpoint = g.runtimeEndpoint ?? g.endpoint ?? env['CONTAINER_RUNTIME_ENDPOINT'] ?? DEFAULT_ENDPOINT;
    const seconds = Number(g.timeout ?? '10');
    if (!Number.isFinite(seconds) || seconds <= 0) throw new UsageError(`--timeout must be a positive number of seconds, not "${g.timeout}"`);
    this.timeoutMs = seconds * 1000;
  }

  get cri(): CriClient {
    return (this.#cri ??= new CriClient(this.endpoint));
  }

  get cricket(): CricketClient {
    return (this.#cricket ??= new CricketClient(this.endpoint));
  }

  /** A unary CRI call under --timeout (pulls pass their own, longer one). */
  call<M extends MethodName>(method: M, req: DeepPartial<ReqOf<M>> = {} as never, timeoutMs = this.timeoutMs): Promise<ResOf<M>> {
    return this.cri.call(method, req, { timeoutMs });
  }

  close(): void {
    this.#cri?.close();
    this.#cricket?.close();
  }
}
