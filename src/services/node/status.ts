import { existsSync } from 'node:fs';
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
    const runtimeReady = missing.length === 0;
    const net = deps.cni.current();
    const conditions = [
      {
        type: 'RuntimeReady',
        status: runtimeReady,
        reason: runtimeReady ? '' : 'RuntimeBinariesMissing',
        message: runtimeReady ? '' : `missing: ${missing.join(', ')}`,
      },
      {
        type: 'NetworkReady',
        status: net.ready,
        reason: net.ready ? '' : net.reason,
        message: net.ready ? '' : net.message,
      },
    ];
    const runtimeHandlers = Object.entries(config.runtime.handlers).map(([name, h]) => ({
      name,
      features: { recursiveReadOnlyMounts: h.recursive_read_only_mounts, userNamespaces: h.user_namespaces },
    }));
    // kubelet also lists the default handler under the empty name.
    const def = config.runtime.handlers[config.runtime.default_handler]!;
    runtimeHandlers.unshift({
      name: '',
      features: { recursiveReadOnlyMounts: def.recursive_read_only_mounts, userNamespaces: def.user_namespaces },
    });
    const info: Record<string, string> = {};
    if (req.verbose) {
      info['config'] = JSON.stringify(config);
      if (deps.configInfo) info['configLoaded'] = JSON.stringify(deps.configInfo());
      info['buildInfo'] = JSON.stringify(deps.buildInfo);
      info['runtimeSettings'] = JSON.stringify({ podCidr: deps.settings.podCidr });
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
