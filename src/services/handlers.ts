import type { Handlers } from '../core/rpc.js';
import type { Area } from './areas.js';
import type { Deps } from './deps.js';
import { makeGetContainerEvents } from './events/get-container-events.js';
import { makeRuntimeConfig } from './node/runtime-config.js';
import { makeStatus } from './node/status.js';
import { makeUpdateRuntimeConfig } from './node/update-runtime-config.js';
import { version } from './node/version.js';

/** Every implemented RPC: the daemon-wide ones here, the rest from each area. */
export function buildHandlers(deps: Deps, areas: readonly Area[]): Handlers {
  const handlers: Handlers = {
    Version: version,
    Status: makeStatus(deps),
    RuntimeConfig: makeRuntimeConfig(deps),
    UpdateRuntimeConfig: makeUpdateRuntimeConfig(deps),
    GetContainerEvents: makeGetContainerEvents(deps.events),
  };
  for (const area of areas) {
    for (const [name, fn] of Object.entries(area.handlers) as [string, unknown][]) {
      if (fn !== undefined && name in handlers) throw new Error(`two areas implement ${name}`);
      if (fn !== undefined) (handlers as Record<string, unknown>)[name] = fn;
    }
  }
  return handlers;
}
