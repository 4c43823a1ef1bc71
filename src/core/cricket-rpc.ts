/**
 * The shape of the cricket.v1 RPCs (proto/cricket/v1/cricket.proto), shared by the use
 * cases implementing them (services/cricket/) and the gRPC layer serving them
 * (server/cricket-service.ts), as core/rpc.ts does for the CRI.
 */
import type { LayerProgress, PlayReply, PlayRequest, PlayStatusReply, PlayStatusRequest, PullProgress } from '../gen/cricket/v1/cricket.js';
import type { DeepPartial, PullImageRequest } from '../gen/runtime/v1/api.js';
import type { OpContext } from './context.js';

export type { LayerProgress, PullProgress };

type Unary<Req, Res> = (ctx: OpContext, req: Req) => Promise<DeepPartial<Res>>;

export interface CricketHandlers {
  PullImageProgress?: (ctx: OpContext, req: PullImageRequest, send: (msg: DeepPartial<PullProgress>) => Promise<void>) => Promise<void>;
  PlayApply?: Unary<PlayRequest, PlayReply>;
  PlayDown?: Unary<PlayRequest, PlayReply>;
  PlayStatus?: Unary<PlayStatusRequest, PlayStatusReply>;
}
