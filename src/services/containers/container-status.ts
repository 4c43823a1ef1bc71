import { notFound } from '../../core/errors.js';
import { join } from 'node:path';
import type { UnaryHandler } from '../../core/rpc.js';
import type { ContainersDeps } from './containers-deps.js';
import { toCriStatus } from './to-cri.js';

export function makeContainerStatus(deps: ContainersDeps): UnaryHandler<'ContainerStatus'> {
  return async (_ctx, req) => {
    const c = deps.store.resolve(req.containerId);
    if (!c) throw notFound(`container "${req.containerId}" not found`);
    const info: Record<string, string> = {};
    if (req.verbose) {
      const spec = await deps.host.readJson(join(c.meta.bundleDir, 'config.json'));
      info['info'] = JSON.stringify({
        sandboxID: c.meta.podSandboxId,
        pid: c.status.state === 'running' ? c.status.pid : 0,
        runtimeHandler: c.meta.runtimeHandler,
        runtimeType: c.meta.runtimePath,
        bundle: c.meta.bundleDir,
        cgroupsPath: c.meta.cgroupsPath,
        stopSignal: c.meta.stopSignal,
        runtimeSpec: spec,
      });
    }
    return { status: toCriStatus(c), info };
  };
}
