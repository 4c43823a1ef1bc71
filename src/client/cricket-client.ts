import { Client, credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { PlayReply, PlayRequest, PlayStatusReply, PlayStatusRequest, PullProgress } from '../gen/cricket/v1/cricket.js';
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

  playApply(req: Partial<PlayRequest>, timeoutMs = 60_000): Promise<PlayReply> {
    return this.#unary('PlayApply', PlayRequest, PlayReply, req, timeoutMs);
  }

  playDown(req: Partial<PlayRequest>, timeoutMs = 120_000): Promise<PlayReply> {
    return this.#unary('PlayDown', PlayRequest, PlayReply, req, timeoutMs);
  }

  playStatus(timeoutMs = 10_000): Promise<PlayStatusReply> {
    return this.#unary('PlayStatus', PlayStatusRequest, PlayStatusReply, {}, timeoutMs);
  }

  #unary<Req, Res>(
    method: string,
    reqCodec: { encode(v: Req): { finish(): Uint8Array }; fromPartial(v: never): Req },
    resCodec: { decode(b: Uint8Array): Res },
    req: unknown,
    timeoutMs: number,
  ): Promise<Res> {
    return new Promise((resolve, reject) => {
      this.#client.makeUnaryRequest(
        `/cricket.v1.Cricket/${method}`,
        (v: Req) => Buffer.from(reqCodec.encode(v).finish()),
        (b: Buffer) => resCodec.decode(b),
        reqCodec.fromPartial(req as never),
        new Metadata(),
        { deadline: Date.now() + timeoutMs },
        (err, res) => (err ? reject(new CriCallError(method, err)) : resolve(res as Res)),
      );
    });
  }

  close(): void {
    this.#client.close();
  }
}
