import { timed, type Metrics } from '../../core/metrics.js';
import type { ContainerHost, OciRuntimeCalls } from './container-host.js';

const TIMED_CALLS = ['state', 'start', 'kill', 'delete', 'update'] as const;

/**
 * The container host with every OCI runtime call and conmon's create timed for the
 * metrics (runtime binary, subcommand). "create" is conmon running `runc create`, the
 * one runtime call conmon makes for us. With metrics off the host is returned as is.
 */
export function instrumentHost(host: ContainerHost, metrics: Metrics | undefined): ContainerHost {
  if (!metrics) return host;
  return {
    ...host,
    runtime(...args) {
      const rt = host.runtime(...args);
      // Everything else (path, root, ...) reads through to the runtime itself.
      const out = Object.create(rt) as OciRuntimeCalls;
      for (const name of TIMED_CALLS) {
        const call = rt[name] as (...a: unknown[]) => Promise<unknown>;
        (out as unknown as Record<string, unknown>)[name] = (...args: unknown[]) =>
          timed(() => call.apply(rt, args), (s, err) => metrics.runtimeCall(rt.path, name, s, err === undefined));
      }
      return out;
    },
    createWithConmon: (ctx, o) =>
      timed(() => host.createWithConmon(ctx, o), (s, err) => metrics.runtimeCall(o.runtimePath, 'create', s, err === undefined)),
  };
}
