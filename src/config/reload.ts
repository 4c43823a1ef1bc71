import type { Config } from './schema.js';

/**
 * What a SIGHUP may change in a running daemon. Everything else (socket, roots, the
 * streaming server, metrics address, ...) keeps its running value and is named in a
 * warning: the daemon would have to rebind, move state or rebuild an area for it.
 */
export const LIVE_KEYS: readonly string[] = [
  'daemon.log_level',
  'runtime.default_handler',
  'runtime.handlers',
  'images.registries_conf',
  'images.registries_conf_dir',
  'images.pinned_images',
  'network.plugin_timeout_seconds',
];

export interface ReloadPlan {
  /** The config to run with: the running one with the live keys taken from the new. */
  config: Config;
  /** Live keys whose value changed (applied). */
  applied: string[];
  /** Keys that changed in the files but cannot change live: kept at their running value. */
  needsRestart: string[];
  /**
   * Handlers the new files remove or redefine: kept as they run, since pods and
   * containers made with them are driven through them until they are gone.
   */
  keptHandlers: string[];
}

/**
 * Merges a freshly loaded, validated config into the running one (pure). Handlers are
 * added live; a handler that is removed or changed keeps its running definition until
 * a restart, so no running pod finds its runtime gone or swapped under it.
 */
export function planReload(running: Readonly<Config>, loaded: Readonly<Config>): ReloadPlan {
  const needsRestart: string[] = [];
  const applied: string[] = [];
  const out = structuredClone(running) as Config;
  for (const [section, values] of Object.entries(loaded) as [keyof Config, Record<string, unknown>][]) {
    for (const [key, value] of Object.entries(values)) {
      const path = `${section}.${key}`;
      const before = (running[section] as Record<string, unknown>)[key];
      if (sameValue(before, value)) continue;
      if (!LIVE_KEYS.includes(path)) {
        needsRestart.push(path);
        continue;
      }
      if (path === 'runtime.handlers') continue; // below
      (out[section] as Record<string, unknown>)[key] = structuredClone(value);
      applied.push(path);
    }
  }
  const keptHandlers: string[] = [];
  const handlers = { ...running.runtime.handlers };
  let handlersChanged = false;
  for (const [name, h] of Object.entries(loaded.runtime.handlers)) {
    if (!(name in handlers)) {
      handlers[name] = structuredClone(h);
      handlersChanged = true;
    } else if (!sameValue(handlers[name], h)) keptHandlers.push(name);
  }
  for (const name of Object.keys(running.runtime.handlers)) if (!(name in loaded.runtime.handlers)) keptHandlers.push(name);
  out.runtime.handlers = handlers;
  if (handlersChanged) applied.push('runtime.handlers');
  return { config: out, applied, needsRestart, keptHandlers: keptHandlers.sort() };
}

function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
