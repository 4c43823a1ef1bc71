import { computeCapabilities } from './capabilities.js';
import type { OciSpec } from './types.js';

/** runsc's annotations: which container of a sandbox this is, and whose sandbox it joins. */
export const CONTAINER_TYPE_ANNOTATION = 'io.kubernetes.cri.container-type';
export const SANDBOX_ID_ANNOTATION = 'io.kubernetes.cri.sandbox-id';

export interface InfraSpecInput {
  /** The pod id: runsc's id of the sandbox and of its infra container. */
  sandboxId: string;
  rootfsPath: string;
  /** The host's catatonit (static), bound read-only at /catatonit. */
  catatonitPath: string;
  hostname: string;
  /** The pod's pinned network namespace; undefined for a host-network pod. */
  netnsPath: string | undefined;
  /** The sandbox's cgroup (gVisor's kernel, gofers and every container of the pod live in it). */
  cgroupsPath: string;
  /** A privileged pod (security_context.privileged): its sandbox gets every capability the daemon holds. */
  privileged: boolean;
  /** The daemon's bounding set: no capability beyond it can be handed out. */
  bounding: ReadonlySet<string>;
}

/**
 * The OCI spec of a gVisor pod's infra container: `catatonit -P` (sleeps, reaps) as
 * the sandbox's first process, on an empty read-only rootfs. Its annotations make runsc
 * create a new sandbox; the pod's containers name it to join. Its capabilities are a
 * default container's, or all of them for a privileged pod: with --network=host the
 * sandbox process makes the host socket calls of every container of the pod with the
 * capabilities runsc gave it from this spec (with none, a container's bind to port 80
 * is refused: EACCES). Pure, like buildSpec.
 */
export function buildInfraSpec(input: InfraSpecInput): OciSpec {
  const namespaces: { type: string; path?: string }[] = [{ type: 'mount' }, { type: 'pid' }, { type: 'ipc' }, { type: 'uts' }];
  if (input.netnsPath) namespaces.push({ type: 'network', path: input.netnsPath });
  const caps = computeCapabilities({ privileged: input.privileged, add: [], drop: [], ambient: [], bounding: input.bounding }).bounding;
  const none: string[] = [];
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: ['/catatonit', '-P'],
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      cwd: '/',
      capabilities: { bounding: caps, effective: caps, permitted: caps, inheritable: none, ambient: none },
      noNewPrivileges: true,
    },
    root: { path: input.rootfsPath, readonly: true },
    hostname: input.hostname,
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/catatonit', type: 'bind', source: input.catatonitPath, options: ['rbind', 'ro'] },
    ],
    annotations: { [CONTAINER_TYPE_ANNOTATION]: 'sandbox', [SANDBOX_ID_ANNOTATION]: input.sandboxId },
    linux: {
      resources: {},
      cgroupsPath: input.cgroupsPath,
      namespaces,
      devices: [],
      maskedPaths: [],
      readonlyPaths: [],
    },
  };
}
