import { CgroupDriver } from '../../gen/runtime/v1/api.js';
import type { UnaryHandler } from '../../core/rpc.js';
import type { Deps } from '../deps.js';

/** kubelet asks this at start and refuses to run if its own cgroup driver differs. */
export function makeRuntimeConfig(deps: Deps): UnaryHandler<'RuntimeConfig'> {
  const driver = deps.config.runtime.cgroup_driver === 'systemd' ? CgroupDriver.SYSTEMD : CgroupDriver.CGROUPFS;
  return async () => ({ linux: { cgroupDriver: driver } });
}
