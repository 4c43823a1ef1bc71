import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

export interface CniNetworkConfig {
  file: string;
  name: string;
  cniVersion: string;
  /** The network configuration list as the plugins will see it (a .conf is wrapped). */
  list: { cniVersion: string; name: string; plugins: Record<string, unknown>[]; [k: string]: unknown };
}

export type CniConfigState =
  | { ready: true; config: CniNetworkConfig }
  | { ready: false; reason: string; message: string };

/**
 * Picks the network the way kubelet-era runtimes do: files in the dir sorted by name,
 * the first `.conflist`, `.conf` or `.json` that parses into a usable network wins.
 * Invalid files are skipped and named in the not-ready message if nothing is usable.
 */
export function loadFirstValidCniConfig(dir: string): CniConfigState {
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch (err) {
    return { ready: false, reason: 'NetworkPluginNotReady', message: `no CNI config: cannot read ${dir}: ${(err as Error).message}` };
  }
  const problems: string[] = [];
  for (const name of names) {
    if (!/\.(conflist|conf|json)$/.test(name)) continue;
    const file = join(dir, name);
    try {
      const raw = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
      const config = toList(file, name, raw);
      return { ready: true, config };
    } catch (err) {
      problems.push(`${name}: ${(err as Error).message}`);
    }
  }
  const detail = problems.length > 0 ? ` (invalid: ${problems.join('; ')})` : '';
  return { ready: false, reason: 'NetworkPluginNotReady', message: `no valid CNI network config in ${dir}${detail}` };
}

function toList(file: string, name: string, raw: Record<string, unknown>): CniNetworkConfig {
  const netName = raw['name'];
  if (typeof netName !== 'string' || netName === '') throw new Error('missing "name"');
  const cniVersion = typeof raw['cniVersion'] === 'string' ? (raw['cniVersion'] as string) : '0.2.0';
  let list: CniNetworkConfig['list'];
  if (name.endsWith('.conflist')) {
    const plugins = raw['plugins'];
    if (!Array.isArray(plugins) || plugins.length === 0) throw new Error('"plugins" must be a non-empty list');
    for (const p of plugins) {
      if (!p || typeof p !== 'object' || typeof (p as Record<string, unknown>)['type'] !== 'string') {
        throw new Error('every plugin needs a "type"');
      }
    }
    list = { ...raw, cniVersion, name: netName, plugins: plugins as Record<string, unknown>[] };
  } else {
    if (typeof raw['type'] !== 'string') throw new Error('missing "type"');
    list = { cniVersion, name: netName, plugins: [raw] };
  }
  if (raw['disabled'] === true) throw new Error('network is disabled');
  return { file, name: netName, cniVersion, list };
}

/**
 * Re-reads the config dir only when it changed, so Status stays cheap: the signature
 * is the dir's mtime plus each candidate file's name, mtime and size (an edit in place
 * changes the file, not the dir).
 */
export class CniConfigSource {
  readonly dir: string;
  #signature = '';
  #state: CniConfigState = { ready: false, reason: 'NetworkPluginNotReady', message: 'not loaded yet' };

  constructor(dir: string) {
    this.dir = dir;
  }

  current(): CniConfigState {
    const sig = signatureOf(this.dir);
    if (sig !== this.#signature || sig === '') {
      this.#signature = sig;
      this.#state = loadFirstValidCniConfig(this.dir);
    }
    return this.#state;
  }
}

function signatureOf(dir: string): string {
  try {
    const parts = [String(statSync(dir).mtimeMs)];
    for (const name of readdirSync(dir).sort()) {
      if (!/\.(conflist|conf|json)$/.test(name)) continue;
      try {
        const st = statSync(join(dir, name));
        parts.push(`${name}:${st.mtimeMs}:${st.size}`);
      } catch {
        parts.push(`${name}:gone`);
      }
    }
    return parts.join('|');
  } catch {
    return '';
  }
}
