/**
 * The shape of an RPC implementation, shared by the use cases (which implement it)
 * and the gRPC layer (which calls it). It lives in core/ so that services/ never
 * imports server/.
 */
import type { DeepPartial } from '../gen/runtime/v1/api.js';
import { METHODS, type MethodName } from '../gen/methods.js';
import type { OpContext } from './context.js';

export type { MethodName };
export type ReqOf<M extends MethodName> = ReturnType<(typeof METHODS)[M]['request']['decode']>;
export type ResOf<M extends MethodName> = ReturnType<(typeof METHODS)[M]['response']['decode']>;

/** Services may return partial messages: the wrapper fills defaults before encoding. */
export type UnaryHandler<M extends MethodName> = (ctx: OpContext, req: ReqOf<M>) => Promise<DeepPartial<ResOf<M>>>;
export type StreamHandler<M extends MethodName> = (
  ctx: OpContext,
  req: ReqOf<M>,
  send: (res: DeepPartial<ResOf<M>>) => Promise<void>,
) => Promise<void>;

export type Handler<M extends MethodName> = (typeof METHODS)[M]['responseStream'] extends true
  ? StreamHandler<M>
  : UnaryHandler<M>;

/** The implemented RPCs; any method missing here answers UNIMPLEMENTED. */
export type Handlers = { [M in MethodName]?: Handler<M> };
