import type { OpContext } from '../../core/context.js';
import { unimplemented } from '../../core/errors.js';
import type { Handlers, ReqOf, ResOf, UnaryHandler } from '../../core/rpc.js';
import { METHODS, type MethodName } from '../../gen/methods.js';
import type { DeepPartial } from '../../gen/runtime/v1/api.js';

/** A CRI call made in-process, as kubelet would make it over the socket. */
export type CriCall = <M extends MethodName>(method: M, req: DeepPartial<ReqOf<M>>) => Promise<ResOf<M>>;

interface Codec {
  fromPartial(v: unknown): unknown;
}

/**
 * The reconciler drives pods through the same CRI handlers kubelet reaches over
 * gRPC (the use cases, not the gRPC layer): requests and answers get the proto
 * defaults a wire round trip would give them.
 */
export function criCaller(handlers: Handlers, ctx: () => OpContext): CriCall {
  return (async (method: MethodName, req: unknown) => {
    const fn = handlers[method] as UnaryHandler<MethodName> | undefined;
    if (!fn || METHODS[method].responseStream) throw unimplemented(`${method} is not available to the reconciler`);
    const full = (METHODS[method].request as unknown as Codec).fromPartial(req);
    const res = await fn(ctx(), full as never);
    return (METHODS[method].response as unknown as Codec).fromPartial(res);
  }) as CriCall;
}
