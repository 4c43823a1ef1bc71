import { cpus } from 'node:os';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../../config/schema.js';
import type { KeyedMutex } from '../../core/keyed-mutex.js';
import { invalidArgument } from '../../core/errors.js';
import { isCgroupV2 } from '../../host/cgroups.js';
import { ownBoundingSet, ownOomScoreAdjValue } from '../../host/capabilities.js';
import type { ImagesArea } from '../images/api.js';
import type { HostFacts } from '../../oci/spec.js';
import type { PodsArea } from '../pods/api.js';
import { OciRuntime } from '../../runtime/runc.js';
import type { ExitWatcher } from '../../runtime/exit-watcher.js';
import type { ContainerStore } from './container-store.js';
import type { EventBus } from '../events/event-bus.js';

export interface ContainerDirs {
  /** <run_root>/containers/<id>: bundle, rootfs mount point, conmon files. */
  readonly run: string;
  /** <root>/containers/layers/<id>: the writable layer. */
  readonly layers: string;
  /** <run_root>/containers/exits: conmon's exit files. */
  readonly exits: string;
  /** <run_root>/containers/attach: conmon's attach socket links. */
  readonly sockets: string;
}

/** What the container RPCs share, built once by createContainers(). */
export interface ContainersDeps {
  readonly config: Readonly<Config>;
  readonly log: Logger;
  readonly images: ImagesArea;
  readonly pods: PodsArea;
  readonly store: ContainerStore;
  readonly mutex: KeyedMutex;
  readonly events: EventBus;
  readonly exits: ExitWatcher;
  readonly dirs: ContainerDirs;
  runtime(handler: string): OciRuntime;
  facts(): HostFacts;
}

/** The OCI runtime for a pod's handler ('' = the default); unknown handlers are refused. */
export function runtimeFor(config: Readonly<Config>, handler: string): OciRuntime {
  const name = handler || config.runtime.default_handler;
  const h = config.runtime.handlers[name];
  if (!h) throw invalidArgument(`runtime handler "${name}" is not configured (have: ${Object.keys(config.runtime.handlers).join(', ')})`);
  return new OciRuntime(h.path, h.root || join(config.daemon.run_root, name));
}

function hugepageSizes(): string[] {
  try {
    // hugepages-2048kB → 2MB, as cgroup file names spell them.
    return readdirSync('/sys/kernel/mm/hugepages').map((d) => {
      const kb = Number(/hugepages-(\d+)kB/.exec(d)?.[1] ?? 0);
      return kb >= 1 << 20 ? `${kb >> 20}GB` : kb >= 1024 ? `${kb >> 10}MB` : `${kb}KB`;
    });
  } catch {
    return [];
  }
}

/** Host facts read once: they do not change while the daemon runs. */
export function readHostFacts(config: Readonly<Config>): HostFacts {
  const bounding = ownBoundingSet();
  const restrict = config.runtime.restrict_oom_score_adj;
  let apparmorEnabled = false;
  try {
    apparmorEnabled = readFileSync('/sys/module/apparmor/parameters/enabled', 'utf8').trim() === 'Y';
  } catch {
    // no AppArmor
  }
  return {
    bounding,
    arch: process.arch,
    apparmorEnabled,
    cpuCount: cpus().length,
    cgroupV2: isCgroupV2(),
    ownOomScoreAdj: ownOomScoreAdjValue(),
    clampOomScoreAdj: restrict === true || (restrict === 'auto' && !bounding.has('CAP_SYS_RESOURCE')),
    hugepageSizes: existsSync('/sys/kernel/mm/hugepages') ? hugepageSizes() : [],
  };
}
