import { posix } from 'node:path';
import { invalidArgument } from '../core/errors.js';
import { MountPropagation } from '../gen/runtime/v1/api.js';
import type { OciMount } from './types.js';

/** A CRI mount after the host side was checked (exists, symlinks resolved). */
export interface ResolvedMount {
  containerPath: string;
  /** For an image volume: the read-only mount of the image's layers, made by the caller. */
  hostPath: string;
  /** Set for an image volume (the CRI mount's image): hostPath is filled in once it is mounted. */
  imageRef?: string;
  readonly: boolean;
  recursiveReadOnly: boolean;
  propagation: MountPropagation;
  /** The CRI mount's uid_mappings/gid_mappings (a pod with its own user namespace): seen through an idmapped mount made by the caller. */
  idmap?: { uidMappings: readonly IdRange[]; gidMappings: readonly IdRange[] };
}

export interface IdRange {
  containerId: number;
  hostId: number;
  length: number;
}

export interface PodFiles {
  hostnamePath: string | undefined;
  hostsPath: string;
  resolvConfPath: string;
  shmPath: string | undefined;
}

/** A container path must be absolute and clean: "/data", never "data" or "/a/../b". */
export function checkContainerPath(p: string, what: string): string {
  if (!p.startsWith('/')) throw invalidArgument(`${what} "${p}" must be an absolute path inside the container`);
  if (p.split('/').includes('..')) throw invalidArgument(`${what} "${p}" must not contain ".."`);
  if (p.includes('\0')) throw invalidArgument(`${what} contains a NUL byte`);
  return posix.normalize(p).replace(/\/+$/, '') || '/';
}

function propagationOption(p: MountPropagation): string {
  switch (p) {
    case MountPropagation.PROPAGATION_HOST_TO_CONTAINER:
      return 'rslave';
    case MountPropagation.PROPAGATION_BIDIRECTIONAL:
      return 'rshared';
    case MountPropagation.PROPAGATION_PRIVATE:
      return 'rprivate';
    default:
      throw invalidArgument(`mount propagation ${p} is not one of PRIVATE, HOST_TO_CONTAINER, BIDIRECTIONAL`);
  }
}

/**
 * The container's mounts: the kernel file systems every container has, the pod's
 * hostname/hosts/resolv.conf/shm, then the CRI's mounts, which win over any default
 * at the same destination. Also the rootfs propagation that slave/shared mounts need.
 */
export function buildMounts(input: {
  privileged: boolean;
  readonlyRootfs: boolean;
  cgroupV2: boolean;
  pod: PodFiles;
  cri: readonly ResolvedMount[];
}): { mounts: OciMount[]; rootfsPropagation: string | undefined } {
  const sysOpts = ['nosuid', 'noexec', 'nodev', input.privileged ? 'rw' : 'ro'];
  const defaults: OciMount[] = [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: sysOpts },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', input.privileged ? 'rw' : 'ro'] },
  ];
  const podRo = input.readonlyRootfs ? 'ro' : 'rw';
  if (input.pod.shmPath) {
    defaults.push({ destination: '/dev/shm', type: 'bind', source: input.pod.shmPath, options: ['rbind', 'rprivate', 'rw'] });
  } else {
    defaults.push({ destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] });
  }
  if (input.pod.hostnamePath) {
    defaults.push({ destination: '/etc/hostname', type: 'bind', source: input.pod.hostnamePath, options: ['rbind', 'rprivate', podRo] });
  }
  if (input.pod.hostsPath) {
    defaults.push({ destination: '/etc/hosts', type: 'bind', source: input.pod.hostsPath, options: ['rbind', 'rprivate', podRo] });
  }
  if (input.pod.resolvConfPath) {
    defaults.push({ destination: '/etc/resolv.conf', type: 'bind', source: input.pod.resolvConfPath, options: ['rbind', 'rprivate', podRo] });
  }

  const seen = new Set<string>();
  const cri: OciMount[] = [];
  let rootfsPropagation: string | undefined;
  for (const m of input.cri) {
    const dest = checkContainerPath(m.containerPath, 'mount container_path');
    if (seen.has(dest)) throw invalidArgument(`two mounts target ${dest}`);
    seen.add(dest);
    const prop = propagationOption(m.propagation);
    if (m.recursiveReadOnly && (!m.readonly || m.propagation !== MountPropagation.PROPAGATION_PRIVATE)) {
      throw invalidArgument(`mount at ${dest}: recursive_read_only needs readonly and PROPAGATION_PRIVATE`);
    }
    if (prop === 'rshared') rootfsPropagation = 'rshared';
    else if (prop === 'rslave' && rootfsPropagation !== 'rshared') rootfsPropagation = 'rslave';
    const options = ['rbind', prop, m.readonly ? 'ro' : 'rw'];
    if (m.readonly && m.recursiveReadOnly) options.push('rro');
    cri.push({ destination: dest, type: 'bind', source: m.hostPath, options });
  }
  // A CRI mount over /sys/fs/cgroup or /dev/shm replaces ours; one under it keeps ours.
  const kept = defaults.filter((d) => !seen.has(d.destination));
  return { mounts: [...kept, ...cri], rootfsPropagation };
}
