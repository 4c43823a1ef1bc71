import { existsSync } from 'node:fs';
import { probeHandler } from '../../runtime/handler.js';
import { probeUserNamespaces } from '../../host/userns.js';
import type { UnaryHandler } from '../../core/rpc.js';
import type { Deps } from '../deps.js';

/**
 * RuntimeReady: the configured OCI runtime and conmon are present.
 * NetworkReady: a valid CNI network config exists (re-read when the dir changes).
 * kubelet stops scheduling pods onto a node whose runtime is not ready.
 */
export function makeStatus(deps: Deps): UnaryHandler<'Status'> {
  return async (_ctx, req) => {
    const { config } = deps;
    const missing = [config.runtime.handlers[config.runtime.default_handler]!.path, config.runtime.conmon].filter(
      (p) => !existsSync(p),
    );
    // Every handler's binary is run once (`--version`, cached per binary): one that is
    // missing or fails is reported with its own words. The default handler decides
    // RuntimeReady; the others get a condition each, "RuntimeHandlerReady/<name>",
    // which kubelet ignores and people read (crictl info).
    const names = Object.keys(config.runtime.handlers);
    const probes = await Promise.all(names.map((n) => probeHandler(config.runtime.handlers[n]!)));
    const broken = new Map(names.flatMap((n, i) => { const p = probes[i]!; return p.ok ? [] : [[n, p.message] as const]; }));
    const defBroken = broken.get(config.runtime.default_handler);
    const runtimeReady = missing.length === 0 && defBroken === undefined;
    const net = deps.cni.current();
    const conditions = [
      {
        type: 'RuntimeReady',
        status: runtimeReady,
        reason: runtimeReady ? '' : missing.length > 0 ? 'RuntimeBinariesMissing' : 'RuntimeHandlerFailed',
        message: runtimeReady ? '' : missing.length > 0 ? `missing: ${missing.join(', ')}` : defBroken!,
      },
      ...names
        .filter((n) => n !== config.runtime.default_handler)
        .map((n) => {
          const why = broken.get(n);
          return { type: `RuntimeHandlerReady/${n}`, status: why === undefined, reason: why === undefined ? '' : 'RuntimeHandlerFailed', message: why ?? '' };
        }),
      {
        type: 'NetworkReady',
        status: net.ready,
        reason: net.ready ? '' : net.reason,
        message: net.ready ? '' : net.message,
      },
    ];
    // user namespaces: an "oci" handler not configured off, on a node whose one idmap
    // probe passed (the answer is cached; RunPodSandbox gives its reason to a pod asking).
    const userns = await probeUserNamespaces(config.daemon.root, config.daemon.run_root);
    const usernsFor = (h: (typeof config.runtime.handlers)[string]) => h.user_namespaces && h.runtime_type === 'oci' && userns.ok;
    const runtimeHandlers = Object.entries(config.runtime.handlers).map(([name, h]) => ({
      name,
      features: { recursiveReadOnlyMounts: h.recursive_read_only_mounts, userNamespaces: usernsFor(h) },
    }));
    // kubelet also lists the default handler under the empty name.
    const def = config.runtime.handlers[config.runtime.default_handler]!;
    runtimeHandlers.unshift({
      name: '',
      features: { recursiveReadOnlyMounts: def.recursive_read_only_mounts, userNamespaces: usernsFor(def) },
    });
    const info: Record<string, string> = {};
    if (req.verbose) {
      info['config'] = JSON.stringify(config);
      if (deps.configInfo) info['configLoaded'] = JSON.stringify(deps.configInfo());
      info['buildInfo'] = JSON.stringify(deps.buildInfo);
      info['runtimeSettings'] = JSON.stringify({ podCidr: deps.settings.podCidr });
      info['userNamespaces'] = JSON.stringify(userns);
      if (net.ready) info['cniConfig'] = JSON.stringify({ file: net.config.file, name: net.config.name });
    }
    return {
      status: { conditions },
      info,
      runtimeHandlers,
      // Supplemental groups: CreateContainer applies Merge and Strict (src/services/oci/user.ts).
      features: { supplementalGroupsPolicy: true, userNamespacesHostNetwork: false, mountOptions: false },
    };
  };
}
