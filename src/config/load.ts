import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import type { z } from 'zod';
import { invalidArgument } from '../core/errors.js';
import { ConfigSchema, type Config } from './schema.js';

export const DEFAULT_CONFIG_FILE = '/etc/cricket/cricket.toml';
export const DEFAULT_CONFIG_DIR = '/etc/cricket/cricket.d';

type Raw = Record<string, unknown>;

export interface LoadOptions {
  file: string;
  dir: string;
  /** Whether a missing file is an error (it is when given explicitly by --config). */
  fileRequired: boolean;
  /** Flag values, already shaped like the config (e.g. { daemon: { listen } }). */
  overrides: Raw;
}

/**
 * Reads the main file, then each drop-in in name order, validating each on its
 * own so an error names the file it is in; merges them with the flags on top, and
 * returns the frozen result.
 */
export function loadConfig(opts: LoadOptions): Readonly<Config> {
  let merged: Raw = {};
  const main = readTomlFile(opts.file, opts.fileRequired);
  if (main) merged = deepMerge(merged, main);
  for (const file of listDropIns(opts.dir)) {
    const raw = readTomlFile(file, true)!;
    merged = deepMerge(merged, raw);
  }
  merged = deepMerge(merged, opts.overrides);
  const cfg = validate(merged, 'the merged configuration (files and flags)');
  if (!cfg.runtime.handlers['runc']) {
    cfg.runtime.handlers['runc'] = ConfigSchema.shape.runtime.parse({}).handlers['runc']!;
  }
  if (!cfg.runtime.handlers[cfg.runtime.default_handler]) {
    throw invalidArgument(
      `config: runtime.default_handler "${cfg.runtime.default_handler}" is not a configured handler (have: ${Object.keys(cfg.runtime.handlers).join(', ')})`,
    );
  }
  return deepFreeze(cfg);
}

function readTomlFile(file: string, required: boolean): Raw | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !required) return undefined;
    throw invalidArgument(`config ${file}: cannot read: ${(err as Error).message}`);
  }
  let raw: Raw;
  try {
    raw = parseToml(text) as Raw;
  } catch (err) {
    throw invalidArgument(`config ${file}: invalid TOML: ${(err as Error).message.split('\n')[0]}`);
  }
  validate(raw, file);
  return raw;
}

function listDropIns(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw invalidArgument(`config dir ${dir}: cannot read: ${(err as Error).message}`);
  }
  return names
    .filter((n) => n.endsWith('.toml'))
    .sort()
    .map((n) => join(dir, n))
    .filter((p) => statSync(p).isFile());
}

function validate(raw: Raw, where: string): Config {
  const res = ConfigSchema.safeParse(raw);
  if (res.success) return res.data;
  throw invalidArgument(`config ${where}: ${describeIssues(res.error.issues)}`);
}

export function describeIssues(issues: readonly z.core.$ZodIssue[]): string {
  return issues
    .map((i) => {
      const unknown = i.code === 'unrecognized_keys' ? ` ${i.keys.map((k) => [...i.path, k].join('.')).join(', ')}` : '';
      const key = i.path.length > 0 ? `key ${i.path.join('.')}: ` : '';
      return `${key}${i.message}${unknown}`;
    })
    .join('; ');
}

function isTable(v: unknown): v is Raw {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Date);
}

export function deepMerge(base: Raw, over: Raw): Raw {
  const out: Raw = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    out[k] = isTable(v) && isTable(out[k]) ? deepMerge(out[k] as Raw, v) : v;
  }
  return out;
}

export function deepFreeze<T>(o: T): Readonly<T> {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
