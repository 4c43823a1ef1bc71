import type { Logger } from 'pino';
import type { CniConfigSource } from '../cni/cni-config-loader.js';
import type { Config } from '../config/schema.js';
import type { Metrics } from '../core/metrics.js';
import type { EventBus } from './events/event-bus.js';
import type { RuntimeSettings } from './node/runtime-settings.js';

/**
 * What the areas and the daemon-wide RPCs share, built once by daemon/app.ts. An area
 * takes the part it needs (Pick<Deps, ...>), so a test builds only that part.
 */
export interface Deps {
  readonly config: Readonly<Config>;
  readonly log: Logger;
  /** The CNI network config as last read: pods use it, Status reports NetworkReady from it. */
  readonly cni: CniConfigSource;
  /** GetContainerEvents' fan-out: pods and containers publish their lifecycle events here. */
  readonly events: EventBus;
  readonly settings: RuntimeSettings;
  readonly buildInfo: Readonly<Record<string, string>>;
  /** Counters and timings for the metrics endpoint (NO_METRICS when it is off). */
  readonly metrics: Metrics;
  /** When the running config was loaded (start or the last SIGHUP), for Status verbose. */
  readonly configInfo?: () => { loadedAt: string; reloads: number };
}
