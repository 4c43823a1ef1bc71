import { Client, credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { PullProgress } from '../gen/cricket/v1/cricket.js';
import { PullImageRequest, type DeepPartial } from '../gen/runtime/v1/api.js';
import { CriCallError, DEFAULT_ENDPOINT } from './cri-client.js';

/** A client of cricketd's own service (cricket.v1), on the same socket as the CRI. */
export class CricketClient {
  readonly #client: Client;

  constructor(endpoint: string = DEFAULT_ENDPOINT) {
    this.#client = new Client(endpoint.includes('://') ? endpoint : `unix://${endpoint}`, credentials.createInsecure());
  }

  /** PullImage with progress: one message per picture, the last with imageRef. */
  async *pullImageProgress(req: DeepPartial<PullImageRequest>, opts: { signal?: AbortSignal } = {}): AsyncGenerator<PullProgress> {
    const call = this.#client.makeServerStreamRequest(
      '/cricket.v1.Cricket/PullImageProgress',
      (v: PullImageRequest) => Buffer.from(PullImageRequest.encode(v).finish()),
      (b: Buffer) => PullProgress.decode(b),
      PullImageRequest.fromPartial(req),
      new Metadata(),
      {},
    );
    const onAbort = () => call.cancel();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      for await (const msg of call) yield msg as PullProgress;
    } catch (err) {
      const se = err as ServiceError;
      if (typeof se.code === 'number') throw new CriCallError('PullImageProgress', se);
      throw err;
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
      call.cancel();
    }
  }

  close(): void {
    this.#client.close();
  }
}
