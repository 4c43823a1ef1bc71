import { isIP } from 'node:net';
import { existsSync, realpathSync } from 'node:fs';
import { dirname, posix } from 'node:path';
import type { Config } from '../../config/schema.js';
import { failedPrecondition, invalidArgument } from '../../core/errors.js';
import { NamespaceMode, type IDMapping, type PodSandboxConfig, type RunPodSandboxRequest, type UserNamespace } from '../../gen/runtime/v1/api.js';
import { sysctlKind, sysctlProcPath, type IdMapping } from '../../host/netns.js';
import { toCgroupPath } from '../../host/cgroups.js';
import { bandwidthFromAnnotations, validatePortMappings, type CniPortMapping } from '../../cni/port-mappings.js';

export const MAX_NAME_LENGTH = 253;

/** Everything RunPodSandbox derives from the request before touching the host. */
export interface PodPlan {
  config: PodSandboxConfig;
  nameKey: string;
  runtimeHandler: string;
  hostNetwork: boolean;
  hostIpc: boolean;
  /** namespace_options.pid == POD: a shared PID namespace with catatonit as init. */
  sharedPid: boolean;
  hostname: string;
  logDirectory: string;
  /** cgroupfs path of the pod's cgroup parent; empty means the default under /cricket. */
  cgroupParent: string;
  sysctls: Record<string, string>;
  portMappings: CniPortMapping[];
  bandwidth: Record<string, number> | undefined;
  /** Static IPs asked for through the cni.cricket.dev/ips annotation (comma-separated), for the ips capability. */
  ips: string[] | undefined;
  /** user namespace POD (hostUsers: false): kubelet's one uid and one gid range; undefined: the node's. */
  userns: { uidMappings: IdMapping[]; gidMappings: IdMapping[] } | undefined;
}

export const IPS_ANNOTATION = 'cni.cricket.dev/ips';

/**
 * Checks a RunPodSandbox request completely, so a bad one fails with InvalidArgument
 * before anything is created.
 */
export function planPod(req: RunPodSandboxRequest, config: Readonly<Config>, hostHostname: string): PodPlan {
  const c = req.config;
  if (!c) throw invalidArgument('RunPodSandbox needs a config');
  const md = c.metadata;
  if (!md) throw invalidArgument('pod sandbox config needs metadata (name, uid, namespace, attempt)');
  checkName('metadata.name', md.name, true);
  checkName('metadata.namespace', md.namespace, false);
  checkName('metadata.uid', md.uid, false);

  const handlerName = req.runtimeHandler === '' ? config.runtime.default_handler : req.runtimeHandler;
  if (!(handlerName in config.runtime.handlers)) {
    const known = Object.keys(config.runtime.handlers).sort().join(', ');
    throw invalidArgument(`runtime handler "${req.runtimeHandler}" is not configured; known handlers: ${known}`);
  }
  const sandboxed = config.runtime.handlers[handlerName]!.runtime_type === 'sandbox';

  const ns = c.linux?.securityContext?.namespaceOptions;
  const netMode = ns?.network ?? NamespaceMode.POD;
  const ipcMode = ns?.ipc ?? NamespaceMode.POD;
  const pidMode = ns?.pid ?? NamespaceMode.POD;
  if (netMode !== NamespaceMode.POD && netMode !== NamespaceMode.NODE) throw invalidArgument(`namespace_options.network must be POD or NODE for a pod, got ${netMode}`);
  if (ipcMode !== NamespaceMode.POD && ipcMode !== NamespaceMode.NODE) throw invalidArgument(`namespace_options.ipc must be POD or NODE for a pod, got ${ipcMode}`);
  if (pidMode !== NamespaceMode.POD && pidMode !== NamespaceMode.NODE && pidMode !== NamespaceMode.CONTAINER) {
    throw invalidArgument(`namespace_options.pid must be POD, CONTAINER or NODE for a pod, got ${pidMode}`);
  }
  const hostNetwork = netMode === NamespaceMode.NODE;
  const hostIpc = ipcMode === NamespaceMode.NODE;
  const userns = planUserns(ns?.usernsOptions, { hostNetwork, hostIpc, hostPid: pidMode === NamespaceMode.NODE });
  // Checked after the request itself (so a bad one is InvalidArgument on any node): a
  // handler that cannot is a precondition of the node, as the probe's answer is.
  if (userns && sandboxed) {
    throw failedPrecondition(`runtime handler "${handlerName}" (a gVisor sandbox) cannot give a pod its own user namespace (Status reports user_namespaces false for it)`);
  }
  if (userns && !config.runtime.handlers[handlerName]!.user_namespaces) {
    throw failedPrecondition(`runtime handler "${handlerName}" has user_namespaces = false in the configuration, so it cannot give a pod its own user namespace`);
  }
  if (sandboxed) {
    // gVisor's kernel has its own PID and IPC namespaces: the host's cannot be seen from it.
    if (pidMode === NamespaceMode.NODE) throw invalidArgument(`runtime handler "${handlerName}" (a gVisor sandbox) cannot give a pod the host PID namespace`);
    if (hostIpc) throw invalidArgument(`runtime handler "${handlerName}" (a gVisor sandbox) cannot give a pod the host IPC namespace`);
  }

  let hostname = c.hostname;
  if (hostname === '') hostname = hostNetwork ? hostHostname : defaultHostname(md.name);
  if (hostname.length > 64 || !/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(hostname)) {
    throw invalidArgument(`hostname "${hostname}" is not a valid host name (letters, digits, '-' and '.', at most 64 characters)`);
  }

  const logDirectory = checkLogDirectory(c.logDirectory, config.logs.allowed_roots);

  let cgroupParent = '';
  if (c.linux?.cgroupParent) cgroupParent = toCgroupPath(c.linux.cgroupParent, config.runtime.cgroup_driver);

  const sysctls: Record<string, string> = {};
  for (const [k, v] of Object.entries(c.linux?.sysctls ?? {})) {
    sysctlProcPath(k);
    const kind = sysctlKind(k);
    if (kind === undefined) throw invalidArgument(`sysctl "${k}" is not namespaced and cannot be set for a pod`);
    if (kind === 'net' && hostNetwork) throw invalidArgument(`sysctl "${k}" needs the pod's own network namespace, but the pod uses the host network`);
    if (kind === 'ipc' && hostIpc) throw invalidArgument(`sysctl "${k}" needs the pod's own IPC namespace, but the pod uses the host IPC`);
    if (/[\n\0]/.test(v)) throw invalidArgument(`sysctl "${k}" has a value with a newline or NUL`);
    sysctls[k] = v;
  }

  for (const s of c.dnsConfig?.servers ?? []) if (isIP(s) === 0) throw invalidArgument(`dns_config.servers: "${s}" is not an IP address`);
  for (const s of [...(c.dnsConfig?.searches ?? []), ...(c.dnsConfig?.options ?? [])]) {
    if (/[\s\0]/.test(s) || s === '') throw invalidArgument(`dns_config: "${s}" must be one non-empty word`);
  }

  const portMappings = hostNetwork ? [] : validatePortMappings(c.portMappings);
  const bandwidth = hostNetwork ? undefined : bandwidthFromAnnotations(c.annotations);
  let ips: string[] | undefined;
  const ipsAnn = c.annotations[IPS_ANNOTATION];
  if (ipsAnn !== undefined && !hostNetwork) {
    ips = ipsAnn.split(',').map((s) => s.trim()).filter(Boolean);
    for (const ip of ips) if (isIP(ip.split('/')[0]!) === 0) throw invalidArgument(`annotation ${IPS_ANNOTATION}: "${ip}" is not an IP address`);
  }

  return {
    config: c,
    nameKey: `${md.name}_${md.namespace}_${md.uid}_${md.attempt}`,
    runtimeHandler: handlerName,
    hostNetwork,
    hostIpc,
    // With a sandbox handler the pod's gVisor sandbox has its own PID namespace, with
    // the infra container's catatonit as init (runtime/pod-sandbox.ts): no host-side
    // init holds one.
    sharedPid: pidMode === NamespaceMode.POD && !sandboxed,
    hostname,
    logDirectory,
    cgroupParent,
    sysctls,
    portMappings,
    bandwidth,
    ips,
    userns,
  };
}

const MAX_ID = 2 ** 32 - 1;

/**
 * What kubelet and critest expect of namespace_options.userns_options: NODE (or none) is
 * the node's user namespace; POD is a new one with exactly one uid and one gid range,
 * each mapping container id 0 (the pod's root); CONTAINER and TARGET are not modes a
 * pod's user namespace can have. The pod's other namespaces are made inside it, so it
 * cannot share the node's network, IPC or PID namespace.
 */
export function planUserns(
  u: UserNamespace | undefined,
  shared: { hostNetwork: boolean; hostIpc: boolean; hostPid: boolean },
): { uidMappings: IdMapping[]; gidMappings: IdMapping[] } | undefined {
  if (!u || u.mode === NamespaceMode.NODE) return undefined;
  if (u.mode !== NamespaceMode.POD) {
    const name = NamespaceMode[u.mode] ?? String(u.mode);
    throw invalidArgument(`user namespace mode ${name} is not supported: a pod's user namespace is POD (its own, shared by its containers) or NODE (the node's)`);
  }
  const one = (kind: 'uid' | 'gid', list: readonly IDMapping[]): IdMapping[] => {
    if (list.length !== 1) throw invalidArgument(`a POD user namespace needs exactly one ${kind} mapping, got ${list.length}`);
    const m = list[0]!;
    if (m.containerId !== 0) throw invalidArgument(`the ${kind} mapping must map container id 0 (the pod's root), but it starts at container id ${m.containerId}`);
    if (m.length === 0) throw invalidArgument(`the ${kind} mapping has length 0`);
    if (m.hostId + m.length - 1 > MAX_ID) throw invalidArgument(`the ${kind} mapping ${m.hostId}+${m.length} goes past the largest id ${MAX_ID}`);
    return [{ containerId: 0, hostId: m.hostId, length: m.length }];
  };
  const uidMappings = one('uid', u.uids);
  const gidMappings = one('gid', u.gids);
  if (shared.hostNetwork) throw invalidArgument('a pod with its own user namespace cannot use the host network (user namespaces with host network are not supported)');
  if (shared.hostIpc) throw invalidArgument('a pod with its own user namespace cannot use the host IPC namespace');
  if (shared.hostPid) throw invalidArgument('a pod with its own user namespace cannot use the host PID namespace');
  return { uidMappings, gidMappings };
}

function checkName(field: string, v: string, required: boolean): void {
  if (v === '') {
    if (required) throw invalidArgument(`${field} must not be empty`);
    return;
  }
  if (v.length > MAX_NAME_LENGTH) throw invalidArgument(`${field} is ${v.length} characters; at most ${MAX_NAME_LENGTH} are allowed`);
  if (v.includes('/') || v.includes('..')) throw invalidArgument(`${field} "${v}" must not contain "/" or ".."`);
  // These would break CNI_ARGS (key=value;key=value) and file names.
  if (/[;=\s\0]/.test(v) || /[\x00-\x1f\x7f]/.test(v)) throw invalidArgument(`${field} "${v}" must not contain ';', '=', spaces or control characters`);
}

function defaultHostname(name: string): string {
  const h = name.toLowerCase().replace(/[^a-z0-9.-]/g, '-').replace(/^[^a-z0-9]+/, '').slice(0, 63).replace(/[^a-z0-9]+$/, '');
  return h === '' ? 'pod' : h;
}

function checkLogDirectory(dir: string, roots: readonly string[]): string {
  if (dir === '') return '';
  if (!dir.startsWith('/')) throw invalidArgument(`log_directory "${dir}" must be an absolute path`);
  if (dir.split('/').includes('..')) throw invalidArgument(`log_directory "${dir}" must not contain ".."`);
  const norm = posix.normalize(dir).replace(/\/+$/, '') || '/';
  if (roots.length > 0 && !roots.some((r) => norm === r.replace(/\/+$/, '') || norm.startsWith(`${r.replace(/\/+$/, '')}/`))) {
    throw invalidArgument(`log_directory "${dir}" is outside the allowed log roots (${roots.join(', ')}); set logs.allowed_roots to allow it`);
  }
  return norm;
}

/**
 * The lexical check above cannot see symlinks: /var/log/pods/x -> /etc would pass it.
 * Resolve the deepest existing ancestor and check that it still lies under a root
 * (itself resolved), before RunPodSandbox creates anything there.
 */
export function checkLogDirectoryOnDisk(dir: string, roots: readonly string[]): void {
  if (dir === '' || roots.length === 0) return;
  let existing = dir;
  while (!existsSync(existing) && existing !== '/') existing = dirname(existing);
  const real = realpathSync(existing);
  const inside = roots.some((r) => {
    let root = r;
    try {
      root = realpathSync(r);
    } catch {
      // a root that does not exist yet is compared as written
    }
    root = root.replace(/\/+$/, '') || '/';
    // An ancestor above the root (the root not created yet) is fine: what gets created is new.
    return real === root || real.startsWith(`${root}/`) || root.startsWith(`${real === '/' ? '' : real}/`);
  });
  if (!inside) throw invalidArgument(`log_directory "${dir}" resolves to ${real}, outside the allowed log roots (${roots.join(', ')})`);
}
