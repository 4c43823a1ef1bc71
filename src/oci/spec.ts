import { invalidArgument } from '../core/errors.js';
import { NamespaceMode, SecurityProfile_ProfileType, SupplementalGroupsPolicy, type ContainerConfig } from '../gen/runtime/v1/api.js';
import { SANDBOX_JOIN_ANNOTATIONS } from './annotations.js';
import { CONTAINER_TYPE_ANNOTATION, SANDBOX_ID_ANNOTATION } from './infra-spec.js';
import { computeCapabilities } from './capabilities.js';
import { buildMounts, checkContainerPath, type ResolvedMount } from './mounts.js';
import { checkPayloadSize, mergeArgs, mergeEnv } from './process-args.js';
import { convertResources, type ResourceFacts } from './resources.js';
import { defaultSeccompProfile } from './seccomp-default.js';
import { maskedAndReadonly } from './security-paths.js';
import { chooseStopSignal } from './stop-signal.js';
import type { OciDevice, OciDeviceCgroup, OciImageRunConfig, OciSeccomp, OciSpec, PodSpecInput } from './types.js';
import type { ResolvedUser } from './user.js';

export interface HostFacts extends ResourceFacts {
  /** CAP_* names of the daemon's bounding set. */
  bounding: ReadonlySet<string>;
  arch: string;
  apparmorEnabled: boolean;
}

/** A CRI device after its host node was stat'ed. */
export interface ResolvedDevice extends OciDevice {
  access: string;
}

/** How seccomp was asked for, once the legacy path field and the typed field are merged. */
export type SeccompChoice = { kind: 'unconfined' } | { kind: 'runtime-default' } | { kind: 'localhost'; path: string };

export function seccompChoice(config: ContainerConfig): SeccompChoice {
  const sc = config.linux?.securityContext;
  if (sc?.seccomp) {
    switch (sc.seccomp.profileType) {
      case SecurityProfile_ProfileType.RuntimeDefault:
        return { kind: 'runtime-default' };
      case SecurityProfile_ProfileType.Unconfined:
        return { kind: 'unconfined' };
      case SecurityProfile_ProfileType.Localhost:
        if (!sc.seccomp.localhostRef.startsWith('/')) {
          throw invalidArgument(`seccomp localhost profile "${sc.seccomp.localhostRef}" must be an absolute path on the node`);
        }
        return { kind: 'localhost', path: sc.seccomp.localhostRef };
      default:
        throw invalidArgument('seccomp profile type is not RuntimeDefault, Unconfined or Localhost');
    }
  }
  const legacy = sc?.seccompProfilePath ?? '';
  if (legacy === '' || legacy === 'unconfined') return { kind: 'unconfined' };
  if (legacy === 'runtime/default' || legacy === 'docker/default') return { kind: 'runtime-default' };
  if (legacy.startsWith('localhost/')) {
    const path = legacy.slice('localhost/'.length);
    if (!path.startsWith('/')) throw invalidArgument(`seccomp profile path "${legacy}" must name an absolute path after localhost/`);
    return { kind: 'localhost', path };
  }
  throw invalidArgument(`seccomp_profile_path "${legacy}" is not runtime/default, unconfined or localhost/<absolute path>`);
}

export interface SpecInput {
  config: ContainerConfig;
  image: Readonly<OciImageRunConfig>;
  sandbox: PodSpecInput;
  user: ResolvedUser;
  rootfsPath: string;
  cgroupsPath: string;
  /** A hostname file in the bundle, bind-mounted at /etc/hostname. */
  hostnamePath: string | undefined;
  mounts: readonly ResolvedMount[];
  devices: readonly ResolvedDevice[];
  /** /proc/<pid>/ns/pid of the target container for NamespaceMode.TARGET. */
  targetPidnsPath: string | undefined;
  /** The parsed Localhost seccomp profile, when that is the choice. */
  localhostSeccomp: OciSeccomp | undefined;
  facts: HostFacts;
  /** What the pod's runtime handler changes; absent: a plain OCI runtime (runc). */
  handler?: SpecHandler;
}

/** A runtime handler's say in the spec. */
export interface SpecHandler {
  /** gVisor (runtime_type "sandbox"): a client's join annotations never reach the spec. */
  sandboxed: boolean;
  /**
   * The pod's gVisor sandbox this container joins (its id, the pod's): the join
   * annotations name it, and PID mode POD shares the sandbox's PID namespace (no pid
   * entry: runsc then puts the container in the sandbox's). Absent: a sandbox of its
   * own (pods made before one sandbox per pod).
   */
  joinSandbox?: string;
  /** A privileged container's device cgroup is not opened to every host device. */
  privilegedWithoutHostDevices: boolean;
  /** Pod annotations the handler's allowed_annotations let in (container annotations win). */
  podAnnotations: Readonly<Record<string, string>>;
}

export interface SpecOutput {
  spec: OciSpec;
  stopSignal: string;
}

/**
 * CRI ContainerConfig + image config + the pod → OCI config.json. Pure: every fact
 * about the host comes in through `input`, so all of it is tested without root.
 */
export function buildSpec(input: SpecInput): SpecOutput {
  const { config, image, sandbox, facts } = input;
  const sc = config.linux?.securityContext;
  const privileged = sc?.privileged ?? false;
  if (privileged && !(sandbox.config.linux?.securityContext?.privileged ?? false)) {
    throw invalidArgument('a privileged container needs a privileged pod sandbox (pod security_context.privileged)');
  }
  const args = mergeArgs(config.command, config.args, image);
  const env = mergeEnv(image.Env, config.envs, { hostname: sandbox.hostname, home: input.user.home });
  checkPayloadSize(args, env);
  const cwd = config.workingDir || image.WorkingDir || '/';
  checkContainerPath(cwd, 'working_dir');
  if (config.stdinOnce && !config.stdin) throw invalidArgument('stdin_once needs stdin');

  const caps = computeCapabilities({
    privileged,
    add: sc?.capabilities?.addCapabilities ?? [],
    drop: sc?.capabilities?.dropCapabilities ?? [],
    ambient: sc?.capabilities?.addAmbientCapabilities ?? [],
    bounding: facts.bounding,
  });
  const { resources, oomScoreAdj } = convertResources(config.linux?.resources, facts);
  const paths = maskedAndReadonly(privileged, sc?.maskedPaths ?? [], sc?.readonlyPaths ?? []);

  let seccomp: OciSeccomp | undefined;
  const choice = seccompChoice(config);
  if (!privileged) {
    if (choice.kind === 'runtime-default') seccomp = defaultSeccompProfile(caps.bounding, facts.arch);
    else if (choice.kind === 'localhost') seccomp = input.localhostSeccomp;
  }
  if (sc?.apparmor?.profileType === SecurityProfile_ProfileType.Localhost && !facts.apparmorEnabled) {
    throw invalidArgument('an AppArmor Localhost profile was asked for but AppArmor is not enabled on this node');
  }

  const ns = sc?.namespaceOptions;
  const namespaces: { type: string; path?: string }[] = [{ type: 'mount' }];
  // hostUsers: false: joined first (runc orders it so); the pod's other namespaces belong to it.
  if (sandbox.userns) namespaces.unshift({ type: 'user', path: sandbox.userns.path });
  const netMode = ns?.network ?? NamespaceMode.POD;
  if (netMode !== NamespaceMode.NODE && sandbox.netnsPath) namespaces.push({ type: 'network', path: sandbox.netnsPath });
  const ipcMode = ns?.ipc ?? NamespaceMode.POD;
  if (ipcMode !== NamespaceMode.NODE && sandbox.ipcnsPath) namespaces.push({ type: 'ipc', path: sandbox.ipcnsPath });
  let hostname: string | undefined;
  if (input.handler?.sandboxed) {
    // gVisor's kernel has its own UTS namespace and takes no path: the pod's hostname
    // (the node's for a host-network pod) is given as the spec's hostname instead.
    namespaces.push({ type: 'uts' });
    hostname = sandbox.hostname;
  } else if (sandbox.utsnsPath) namespaces.push({ type: 'uts', path: sandbox.utsnsPath });
  const pidMode = ns?.pid ?? NamespaceMode.CONTAINER;
  switch (pidMode) {
    case NamespaceMode.NODE:
      break;
    case NamespaceMode.POD:
      if (input.handler?.joinSandbox) break; // the gVisor sandbox's own, shared by the pod's containers
      namespaces.push(sandbox.pidnsPath ? { type: 'pid', path: sandbox.pidnsPath } : { type: 'pid' });
      break;
    case NamespaceMode.TARGET:
      if (!input.targetPidnsPath) throw invalidArgument(`PID namespace TARGET needs a running target container (target_id "${ns?.targetId ?? ''}")`);
      namespaces.push({ type: 'pid', path: input.targetPidnsPath });
      break;
    default:
      namespaces.push({ type: 'pid' });
  }
  if (facts.cgroupV2) namespaces.push({ type: 'cgroup' });

  const { mounts, rootfsPropagation } = buildMounts({
    privileged,
    readonlyRootfs: sc?.readonlyRootfs ?? false,
    cgroupV2: facts.cgroupV2,
    pod: { hostnamePath: input.hostnamePath, hostsPath: sandbox.hostsPath, resolvConfPath: sandbox.resolvConfPath, shmPath: sandbox.shmPath },
    cri: input.mounts,
  });

  // privileged_without_host_devices: the rules of an unprivileged container (only the
  // devices asked for). Cricket never copies the host's /dev into a privileged
  // container; this also keeps its device cgroup closed, as gVisor's kernel cannot use
  // host devices (passed to it under CRI-O here, they crashed it).
  const allDevices = privileged && !(input.handler?.privilegedWithoutHostDevices ?? false);
  const deviceRules: OciDeviceCgroup[] = allDevices ? [{ allow: true, access: 'rwm' }] : [{ allow: false, access: 'rwm' }];
  const devices: OciDevice[] = [];
  for (const d of input.devices) {
    const { access, ...node } = d;
    if (!/^[rwm]{1,3}$/.test(access)) throw invalidArgument(`device ${d.path} permissions "${access}" must be made of r, w, m`);
    checkContainerPath(d.path, 'device container_path');
    devices.push(node);
    if (!allDevices) deviceRules.push({ allow: true, type: d.type, major: d.major, minor: d.minor, access });
  }
  resources.devices = deviceRules;

  const annotations: Record<string, string> = { ...input.handler?.podAnnotations, ...config.annotations };
  if (input.handler?.sandboxed) for (const k of SANDBOX_JOIN_ANNOTATIONS) delete annotations[k];
  if (input.handler?.joinSandbox) {
    annotations[CONTAINER_TYPE_ANNOTATION] = 'container';
    annotations[SANDBOX_ID_ANNOTATION] = input.handler.joinSandbox;
  }

  const strictGroups = sc?.supplementalGroupsPolicy === SupplementalGroupsPolicy.Strict;
  void strictGroups; // applied by resolveUser; kept here to make the dependency visible
  const spec: OciSpec = {
    ociVersion: '1.0.2',
    process: {
      terminal: config.tty,
      // Sorted: Linux's setgroups sorts them anyway (runc containers list them so);
      // gVisor keeps the order it is given, so it would report them otherwise.
      user: { uid: input.user.uid, gid: input.user.gid, additionalGids: [...input.user.additionalGids].sort((a, b) => a - b) },
      args,
      env,
      cwd,
      capabilities: caps,
      noNewPrivileges: sc?.noNewPrivs ?? false,
      ...(oomScoreAdj !== undefined ? { oomScoreAdj } : {}),
    },
    root: { path: input.rootfsPath, readonly: sc?.readonlyRootfs ?? false },
    ...(hostname !== undefined ? { hostname } : {}),
    mounts,
    annotations,
    linux: {
      resources,
      cgroupsPath: input.cgroupsPath,
      namespaces,
      ...(sandbox.userns ? { uidMappings: ociMappings(sandbox.userns.uidMappings), gidMappings: ociMappings(sandbox.userns.gidMappings) } : {}),
      devices,
      ...(seccomp ? { seccomp } : {}),
      maskedPaths: paths.maskedPaths,
      readonlyPaths: paths.readonlyPaths,
      ...(rootfsPropagation ? { rootfsPropagation } : {}),
    },
  };
  return { spec, stopSignal: chooseStopSignal(config.stopSignal, image.StopSignal) };
}

function ociMappings(list: readonly { containerId: number; hostId: number; length: number }[]): { containerID: number; hostID: number; size: number }[] {
  return list.map((m) => ({ containerID: m.containerId, hostID: m.hostId, size: m.length }));
}
