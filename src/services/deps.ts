import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { CniConfigSource } from '../cni/cni-config-loader.js';
import type { RuntimeSettings } from './runtime-settings.js';

/**
 * What the services share, built once by daemon/app.ts. Each area of the daemon
 * (images, pods, containers, streaming) adds its own object here.
 */
export interface Deps {
  readonly config: Readonly<Config>;
  readonly log: Logger;
  readonly cni: CniConfigSource;
  readonly settings: RuntimeSettings;
  readonly buildInfo: Readonly<Record<string, string>>;
}
