import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CricketError, failedPrecondition, internal } from '../core/errors.js';
import { run } from '../host/exec.js';
import { describePluginError, type CniResult } from './cni-result.js';

export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'GC' | 'STATUS' | 'VERSION';

export interface PluginCall {
  command: CniCommand;
  /** The plugin's own config object from the list (type, capabilities, ipam, ...). */
  plugin: Record<string, unknown>;
  networkName: string;
  cniVersion: string;
  containerId?: string;
  netns?: string;
  ifName?: string;
  /** CNI_ARGS as key/value pairs. */
  args?: Readonly<Record<string, string>>;
  prevResult?: CniResult;
  /** Capability args; each goes to a plugin only if it declares the capability. */
  capabilityArgs?: Readonly<Record<string, unknown>>;
  /** Extra top-level keys (GC's cni.dev/valid-attachments). */
  extra?: Readonly<Record<string, unknown>>;
  binDirs: readonly string[];
  signal?: AbortSignal;
  timeoutMs: number;
}

export function findPlugin(type: string, binDirs: readonly string[]): string {
  if (!/^[A-Za-z0-9._-]+$/.test(type)) throw failedPrecondition(`CNI plugin type "${type}" is not a valid plugin name`);
  for (const dir of binDirs) {
    const p = join(dir, type);
    if (existsSync(p)) return p;
  }
  throw failedPrecondition(`CNI plugin "${type}" not found in ${binDirs.join(', ')}`);
}

/** The stdin config one plugin sees, per the CNI spec's "execution of a network configuration list". */
export function pluginStdin(call: PluginCall): Record<string, unknown> {
  const conf: Record<string, unknown> = { ...call.plugin, name: call.networkName, cniVersion: call.cniVersion, ...call.extra };
  if (call.prevResult !== undefined) conf['prevResult'] = call.prevResult;
  const caps = call.plugin['capabilities'];
  const runtimeConfig: Record<string, unknown> = {};
  if (caps && typeof caps === 'object') {
    for (const [k, on] of Object.entries(caps as Record<string, unknown>)) {
      if (on === true && call.capabilityArgs?.[k] !== undefined) runtimeConfig[k] = call.capabilityArgs[k];
    }
  }
  if (Object.keys(runtimeConfig).length > 0) conf['runtimeConfig'] = runtimeConfig;
  else delete conf['runtimeConfig'];
  return conf;
}

export function cniArgsString(args: Readonly<Record<string, string>> | undefined): string {
  if (!args) return '';
  return Object.entries(args)
    .map(([k, v]) => `${k}=${v}`)
    .join(';');
}

/** Runs one plugin; returns its parsed stdout (ADD/CHECK/VERSION) or undefined when empty. */
export async function execPlugin(call: PluginCall): Promise<CniResult | undefined> {
  const type = String(call.plugin['type']);
  const bin = findPlugin(type, call.binDirs);
  const env: NodeJS.ProcessEnv = {
    PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    CNI_COMMAND: call.command,
    CNI_PATH: call.binDirs.join(':'),
  };
  if (call.containerId !== undefined) env['CNI_CONTAINERID'] = call.containerId;
  if (call.netns !== undefined) env['CNI_NETNS'] = call.netns;
  if (call.ifName !== undefined) env['CNI_IFNAME'] = call.ifName;
  if (call.args) env['CNI_ARGS'] = cniArgsString(call.args);
  const r = await run(bin, [], {
    env,
    input: JSON.stringify(pluginStdin(call)),
    signal: call.signal,
    timeoutMs: call.timeoutMs,
    allowFailure: true,
  });
  if (r.exitCode !== 0 || r.signal) {
    const why = describePluginError(r.stdout) ?? (r.stderr.trim().slice(-1000) || `exit code ${r.exitCode ?? r.signal}`);
    throw new CricketError('Internal', `CNI plugin ${type} ${call.command} failed: ${why}`, {
      details: { plugin: type, command: call.command, exitCode: r.exitCode },
    });
  }
  const out = r.stdout.trim();
  if (out === '') return undefined;
  try {
    return JSON.parse(out) as CniResult;
  } catch {
    throw internal(`CNI plugin ${type} ${call.command} printed a result that is not JSON: ${out.slice(0, 200)}`);
  }
}
