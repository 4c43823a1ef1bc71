import type { Handlers } from '../server/rpc-types.js';
import type { Deps } from './deps.js';
import { makeRuntimeConfig } from './runtime-config.js';
import { makeStatus } from './status.js';
import { makeUpdateRuntimeConfig } from './update-runtime-config.js';
import { version } from './version.js';

/** Every implemented RPC. Each area contributes its own map; the rest is UNIMPLEMENTED. */
export function buildHandlers(deps: Deps): Handlers {
  return {
    Version: version,
    Status: makeStatus(deps),
    RuntimeConfig: makeRuntimeConfig(deps),
    UpdateRuntimeConfig: makeUpdateRuntimeConfig(deps),
  };
}
