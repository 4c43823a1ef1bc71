/**
 * The shape of the cricket.v1 RPCs (proto/cricket/v1/cricket.proto), shared by the use
 * cases implementing them (services/cricket/) and the gRPC layer serving them
 * (server/cricket-service.ts), as core/rpc.ts does for the CRI.
 */
import type { LayerProgress, PullProgress } from '../gen/cricket/v1/cricket.js';
import type { DeepPartial, PullImageRequest } from '../gen/runtime/v1/api.js';
import type { OpContext } from './context.js';

export type { LayerProgress, PullProgress };

export interface CricketHandlers {
  PullImageProgress?: (ctx: OpContext, req: PullImageRequest, send: (msg: DeepPartial<PullProgress>) => Promise<void>) => Promise<void>;
}
