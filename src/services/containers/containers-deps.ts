import { resolveHandler, type RuntimeHandler } from '../../runtime/handler.js';
import type { Logger } from 'pino';
import type { Config } from '../../config/schema.js';
import type { KeyedMutex } from '../../core/keyed-mutex.js';
import { invalidArgument } from '../../core/errors.js';
import type { ImagesArea } from '../images/api.js';
import type { HostFacts } from '../../oci/spec.js';
import type { PodsArea } from '../pods/api.js';
import type { ExitWatcher } from '../../runtime/exit-watcher.js';
import type { ContainerHost, OciRuntimeCalls } from './container-host.js';
import type { ContainerStore } from './container-store.js';
import type { EventBus } from '../events/event-bus.js';
import type { Container } from './container-store.js';

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
  /** Mounts, files, conmon, the OCI runtime, stats: the real host or a fake in tests. */
  readonly host: ContainerHost;
  /** The OCI runtime of a pod's handler (runtimeFor over host), for a new container. */
  runtime(handler: string): OciRuntimeCalls;
  /**
   * The runtime an existing container was made with, from its record (binary, --root,
   * global flags): it is stopped and removed by that one even after its handler was
   * changed or dropped from the config (RemovePodSandbox of a runsc pod once runsc was
   * taken out of the config failed with "handler not configured").
   */
  runtimeOf(c: Container): OciRuntimeCalls;
  /** The host's facts, read once: they do not change while the daemon runs. */
  facts(): HostFacts;
}

/** A pod's handler ('' = the default); unknown handlers are refused. */
export function handlerFor(config: Readonly<Config>, handler: string): RuntimeHandler {
  const h = resolveHandler(config, handler);
  if (!h) throw invalidArgument(`runtime handler "${handler}" is not configured (have: ${Object.keys(config.runtime.handlers).join(', ')})`);
  return h;
}

/** The OCI runtime for a pod's handler ('' = the default); unknown handlers are refused. */
export function runtimeFor(config: Readonly<Config>, host: ContainerHost, handler: string): OciRuntimeCalls {
  const h = handlerFor(config, handler);
  return host.runtime(h.path, h.root, h.args);
}
