import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { failedPrecondition } from '../core/errors.js';
import { type ImageReference, repoName } from './reference.js';

// containers-registries.conf(5), version 2 — the file CRI-O, podman and skopeo users
// already have — plus the v1 tables ([registries.search|insecure|block]) that old
// hosts still carry. Read afresh for every pull so an edit needs no daemon restart.

export interface MirrorEntry {
  location: string;
  insecure: boolean;
  pullFromMirror: 'all' | 'digest-only' | 'tag-only';
}

export interface RegistryEntry {
  prefix: string;
  location: string;
  insecure: boolean;
  blocked: boolean;
  mirrorByDigestOnly: boolean;
  mirrors: MirrorEntry[];
}

export interface RegistriesConf {
  registries: RegistryEntry[];
  unqualifiedSearch: string[];
  aliases: Map<string, string>;
  /** Where each part came from, for error messages. */
  sources: string[];
}

/** One place to try a pull from: a mirror or the origin. */
export interface Endpoint {
  /** host[:port] to connect to. */
  host: string;
  /** Repository path at that host. */
  path: string;
  insecure: boolean;
  mirror: boolean;
}

export function emptyRegistriesConf(): RegistriesConf {
  return { registries: [], unqualifiedSearch: [], aliases: new Map(), sources: [] };
}

/** Reads the main file (absent is fine) and then the drop-in dir's *.conf in name order. */
export async function loadRegistriesConf(file: string, dir: string): Promise<RegistriesConf> {
  const conf = emptyRegistriesConf();
  const text = await readOptional(file);
  if (text !== undefined) mergeInto(conf, text, file);
  let names: string[] = [];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.conf')).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' && (err as NodeJS.ErrnoException).code !== 'ENOTDIR') throw err;
  }
  for (const n of names) {
    const t = await readOptional(join(dir, n));
    if (t !== undefined) mergeInto(conf, t, join(dir, n));
  }
  return conf;
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw failedPrecondition(`cannot read registries config ${path}: ${(err as Error).message}`);
  }
}

/** Parses one file's text over what earlier files set (later files win, per prefix). */
export function mergeInto(conf: RegistriesConf, text: string, source: string): void {
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch (err) {
    throw failedPrecondition(`registries config ${source} is not valid TOML: ${(err as Error).message.split('\n')[0]}`);
  }
  const bad = (why: string) => failedPrecondition(`registries config ${source}: ${why}`);
  conf.sources.push(source);
  const strList = (v: unknown, key: string): string[] => {
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw bad(`${key} must be a list of strings`);
    return v as string[];
  };
  if (doc['unqualified-search-registries'] !== undefined) {
    conf.unqualifiedSearch = strList(doc['unqualified-search-registries'], 'unqualified-search-registries');
  }
  const aliases = doc['aliases'];
  if (aliases !== undefined) {
    if (typeof aliases !== 'object' || aliases === null) throw bad('[aliases] must be a table');
    for (const [k, v] of Object.entries(aliases)) if (typeof v === 'string') conf.aliases.set(k, v);
  }
  // v1 tables.
  const v1 = doc['registries'];
  if (v1 !== undefined && !Array.isArray(v1) && typeof v1 === 'object' && v1 !== null) {
    const t = v1 as Record<string, { registries?: unknown }>;
    if (t['search']?.registries) conf.unqualifiedSearch = strList(t['search'].registries, 'registries.search.registries');
    for (const host of t['insecure']?.registries ? strList(t['insecure'].registries, 'registries.insecure.registries') : []) {
      upsert(conf, { ...blankEntry(host), insecure: true });
    }
    for (const host of t['block']?.registries ? strList(t['block'].registries, 'registries.block.registries') : []) {
      upsert(conf, { ...blankEntry(host), blocked: true });
    }
  }
  const regs = doc['registry'];
  if (regs === undefined) return;
  if (!Array.isArray(regs)) throw bad('registry must be an array of tables ([[registry]])');
  for (const r of regs as Record<string, unknown>[]) {
    const location = typeof r['location'] === 'string' ? r['location'] : '';
    const prefix = typeof r['prefix'] === 'string' && r['prefix'] !== '' ? r['prefix'] : location;
    if (prefix === '') throw bad('a [[registry]] needs a prefix or a location');
    const mirrors: MirrorEntry[] = [];
    const m = r['mirror'];
    if (m !== undefined) {
      if (!Array.isArray(m)) throw bad(`registry "${prefix}": mirror must be an array of tables ([[registry.mirror]])`);
      for (const e of m as Record<string, unknown>[]) {
        if (typeof e['location'] !== 'string' || e['location'] === '') throw bad(`registry "${prefix}": a mirror needs a location`);
        const pfm = e['pull-from-mirror'] ?? 'all';
        if (pfm !== 'all' && pfm !== 'digest-only' && pfm !== 'tag-only') {
          throw bad(`registry "${prefix}": pull-from-mirror must be all, digest-only or tag-only`);
        }
        mirrors.push({ location: stripScheme(e['location']), insecure: e['insecure'] === true, pullFromMirror: pfm });
      }
    }
    upsert(conf, {
      prefix: stripScheme(prefix),
      location: stripScheme(location),
      insecure: r['insecure'] === true,
      blocked: r['blocked'] === true,
      mirrorByDigestOnly: r['mirror-by-digest-only'] === true,
      mirrors,
    });
  }
}

function blankEntry(host: string): RegistryEntry {
  return { prefix: host, location: host, insecure: false, blocked: false, mirrorByDigestOnly: false, mirrors: [] };
}

// People write "http://host" although the format wants a bare host; be forgiving.
function stripScheme(s: string): string {
  return s.replace(/^https?:\/\//, '').replace(/\/+$/, '');
}

function upsert(conf: RegistriesConf, e: RegistryEntry): void {
  const i = conf.registries.findIndex((r) => r.prefix === e.prefix);
  if (i >= 0) conf.registries[i] = e;
  else conf.registries.push(e);
}

function prefixMatches(prefix: string, name: string): boolean {
  if (prefix.startsWith('*.')) {
    const host = name.split('/')[0]!;
    return host.endsWith(prefix.slice(1));
  }
  if (!name.startsWith(prefix)) return false;
  const next = name.charAt(prefix.length);
  return next === '' || next === '/' || next === ':' || next === '@';
}

/** The [[registry]] whose prefix matches the repository most specifically. */
export function findRegistry(conf: RegistriesConf, name: string): RegistryEntry | undefined {
  let best: RegistryEntry | undefined;
  for (const r of conf.registries) {
    if (!prefixMatches(r.prefix, name)) continue;
    if (!best || r.prefix.length > best.prefix.length) best = r;
  }
  return best;
}

function rewrite(name: string, prefix: string, location: string): { host: string; path: string } {
  const rewritten = prefix.startsWith('*.') ? name : location + name.slice(prefix.length);
  const slash = rewritten.indexOf('/');
  return { host: rewritten.slice(0, slash), path: rewritten.slice(slash + 1) };
}

/**
 * Where to pull a reference from: its mirrors in order, then the origin. A blocked
 * registry yields `blocked`. The docker.io origin is served by registry-1.docker.io.
 */
export function endpointsFor(conf: RegistriesConf, ref: ImageReference): { blocked: boolean; endpoints: Endpoint[] } {
  const name = repoName(ref);
  const reg = findRegistry(conf, name);
  const endpoints: Endpoint[] = [];
  if (reg?.blocked) return { blocked: true, endpoints };
  if (reg) {
    const byDigest = ref.digest !== undefined;
    for (const m of reg.mirrors) {
      if (reg.mirrorByDigestOnly && !byDigest) continue;
      if (m.pullFromMirror === 'digest-only' && !byDigest) continue;
      if (m.pullFromMirror === 'tag-only' && byDigest) continue;
      endpoints.push({ ...rewrite(name, reg.prefix, m.location), insecure: m.insecure, mirror: true });
    }
    const origin = rewrite(name, reg.prefix, reg.location || reg.prefix);
    endpoints.push({ ...origin, insecure: reg.insecure, mirror: false });
  } else {
    const slash = name.indexOf('/');
    endpoints.push({ host: name.slice(0, slash), path: name.slice(slash + 1), insecure: false, mirror: false });
  }
  for (const e of endpoints) if (e.host === 'docker.io') e.host = 'registry-1.docker.io';
  return { blocked: false, endpoints };
}
