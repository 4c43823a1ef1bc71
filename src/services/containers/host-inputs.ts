import { readFile, realpath, stat } from 'node:fs/promises';
import { dirname, isAbsolute, relative } from 'node:path';
import { invalidArgument } from '../../core/errors.js';
import type { ContainerConfig } from '../../gen/runtime/v1/api.js';
import type { ResolvedMount } from '../../oci/mounts.js';
import { parseSeccompProfile } from '../../oci/seccomp-default.js';
import { seccompChoice, type ResolvedDevice } from '../../oci/spec.js';
import type { OciSeccomp } from '../../oci/types.js';

/**
 * The host-side facts a spec needs, checked before anything is created: every bind
 * source exists (symlinks resolved, as kubelet expects), every device is a device,
 * and a Localhost seccomp profile can be read and parsed.
 */
export async function resolveMounts(config: ContainerConfig): Promise<ResolvedMount[]> {
  const out: ResolvedMount[] = [];
  for (const m of config.mounts) {
    if (m.image) {
      // An image volume: mounted by CreateContainer from the image's layers. Read-only
      // always (kubelet asks for that; an image is never written through a volume).
      if (!m.image.image) throw invalidArgument(`mount at ${m.containerPath}: an image volume needs image.image`);
      out.push({ containerPath: m.containerPath, hostPath: '', imageRef: m.image.image, readonly: true, recursiveReadOnly: m.recursiveReadOnly, propagation: m.propagation });
      continue;
    }
    if (!isAbsolute(m.hostPath)) throw invalidArgument(`mount host_path "${m.hostPath}" must be an absolute path`);
    let real: string;
    try {
      real = await realpath(m.hostPath);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw invalidArgument(`mount host_path "${m.hostPath}" does not exist on the node (for ${m.containerPath}); create it first`);
      if (code === 'ELOOP') throw invalidArgument(`mount host_path "${m.hostPath}" is a symlink loop`);
      throw invalidArgument(`mount host_path "${m.hostPath}" cannot be resolved: ${(err as Error).message}`);
    }
    out.push({
      containerPath: m.containerPath,
      hostPath: real,
      readonly: m.readonly,
      recursiveReadOnly: m.recursiveReadOnly,
      propagation: m.propagation,
      ...(m.uidMappings.length > 0 || m.gidMappings.length > 0 ? { idmap: { uidMappings: m.uidMappings, gidMappings: m.gidMappings } } : {}),
    });
  }
  return out;
}

export async function resolveDevices(config: ContainerConfig): Promise<ResolvedDevice[]> {
  const out: ResolvedDevice[] = [];
  for (const d of config.devices) {
    let st;
    try {
      st = await stat(d.hostPath);
    } catch {
      throw invalidArgument(`device host_path "${d.hostPath}" does not exist on the node`);
    }
    const type = st.isCharacterDevice() ? 'c' : st.isBlockDevice() ? 'b' : undefined;
    if (!type) throw invalidArgument(`device host_path "${d.hostPath}" is not a character or block device`);
    const rdev = Number(st.rdev);
    const major = (rdev >> 8) & 0xfff;
    const minor = (rdev & 0xff) | ((rdev >> 12) & 0xfff00);
    out.push({
      path: d.containerPath || d.hostPath,
      type,
      major,
      minor,
      fileMode: st.mode & 0o7777,
      uid: 0,
      gid: 0,
      access: d.permissions || 'rwm',
    });
  }
  return out;
}

export async function loadLocalhostSeccomp(config: ContainerConfig): Promise<OciSeccomp | undefined> {
  const choice = seccompChoice(config);
  if (choice.kind !== 'localhost') return undefined;
  let text: string;
  try {
    text = await readFile(choice.path, 'utf8');
  } catch (err) {
    throw invalidArgument(`seccomp profile "${choice.path}" cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    return parseSeccompProfile(text, choice.path);
  } catch (err) {
    throw invalidArgument((err as Error).message);
  }
}

/**
 * kubelet gives log_directory (the pod's) and log_path relative to it. The joined
 * path must stay inside the directory, even through symlinks already on disk; this
 * is checked on the deepest part that exists before anything is created, so a
 * refused path never leaves directories outside.
 */
export async function checkLogPathInside(logDirectory: string, full: string): Promise<void> {
  const existing = async (p: string): Promise<string> => {
    for (let cur = p; ; cur = dirname(cur)) {
      try {
        return await realpath(cur);
      } catch {
        if (dirname(cur) === cur) return cur;
      }
    }
  };
  const dirReal = await existing(logDirectory);
  const parentReal = await existing(dirname(full));
  const rel = relative(dirReal, parentReal);
  if (rel.startsWith('..') || isAbsolute(rel)) {
    throw invalidArgument(`log_path resolves to ${full}, outside the pod's log_directory ${logDirectory} (a symlink escapes it)`);
  }
}
