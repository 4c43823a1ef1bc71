import { basename } from 'node:path';
import type { OpContext } from '../../core/context.js';
import { timed, type Metrics } from '../../core/metrics.js';
import { inSpan } from '../../core/tracing.js';
import type { ContainerHost, OciRuntimeCalls } from './container-host.js';

const TIMED_CALLS = ['state', 'start', 'kill', 'delete', 'update'] as const;

/**
 * The container host with every OCI runtime call and conmon's create timed for the
 * metrics (runtime binary, subcommand) and traced as a child of the call's span.
 * "create" is conmon running `runc create`, the one runtime call conmon makes for us.
 */
export function instrumentHost(host: ContainerHost, metrics: Metrics | undefined): ContainerHost {
  const report = (runtime: string, sub: string) => (s: number, err: unknown) => metrics?.runtimeCall(runtime, sub, s, err === undefined);
  return {
    ...host,
    runtime(...args) {
      const rt = host.runtime(...args);
      // Everything else (path, root, ...) reads through to the runtime itself.
      const out = Object.create(rt) as OciRuntimeCalls;
      const bin = basename(rt.path);
      for (const name of TIMED_CALLS) {
        const call = rt[name] as (...a: unknown[]) => Promise<unknown>;
        (out as unknown as Record<string, unknown>)[name] = (ctx: OpContext, ...rest: unknown[]) =>
          inSpan(ctx, `${bin} ${name}`, { 'runtime.binary': bin, 'runtime.subcommand': name }, () =>
            timed(() => call.call(rt, ctx, ...rest), report(rt.path, name)),
          );
      }
      return out;
    },
    createWithConmon: (ctx, o) =>
      inSpan(ctx, 'conmon create', { 'runtime.binary': basename(o.runtimePath), 'runtime.subcommand': 'create' }, () =>
        timed(() => host.createWithConmon(ctx, o), report(o.runtimePath, 'create')),
      ),
  };
}
