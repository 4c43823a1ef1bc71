import { invalidArgument } from '../../core/errors.js';
import { MountPropagation, NamespaceMode, type ContainerConfig } from '../../gen/runtime/v1/api.js';

/**
 * What a container of a gVisor pod (runtime_type "sandbox") cannot have, refused before
 * anything is made. The container joins its pod's gVisor sandbox (runtime/pod-sandbox.ts;
 * `joins` false: a pod recorded before that, whose containers each get a sandbox of
 * their own). gVisor's kernel keeps its own PID and IPC namespaces, so the host's cannot
 * be joined, nor another container's PID namespace by name (TARGET: runsc shares only
 * the sandbox's), and its mounts never propagate back to the host. PID mode POD shares
 * the sandbox's PID namespace with the pod's other containers that ask for POD; in a
 * sandbox of its own it gives the container its own (POD is the proto's default, sent
 * by clients that mean nothing by it, so it is not refused).
 */
export function checkSandboxContainer(config: ContainerConfig, handler: string, joins: boolean): void {
  const ns = config.linux?.securityContext?.namespaceOptions;
  const why = joins ? `runtime handler "${handler}" runs the pod in one gVisor sandbox` : `runtime handler "${handler}" runs each container of this pod in its own gVisor sandbox`;
  switch (ns?.pid ?? NamespaceMode.CONTAINER) {
    case NamespaceMode.NODE:
      throw invalidArgument(`${why}: the host PID namespace is not available`);
    case NamespaceMode.TARGET:
      throw invalidArgument(`${why}: another container's PID namespace (TARGET) is not available`);
    default:
      break;
  }
  if (ns?.ipc === NamespaceMode.NODE) throw invalidArgument(`${why}: the host IPC namespace is not available`);
  for (const m of config.mounts) {
    if (m.propagation === MountPropagation.PROPAGATION_BIDIRECTIONAL) {
      throw invalidArgument(`${why}: mount ${m.containerPath} asks for bidirectional (rshared) propagation, which gVisor does not provide`);
    }
  }
}
