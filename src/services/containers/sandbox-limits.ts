import { invalidArgument } from '../../core/errors.js';
import { MountPropagation, NamespaceMode, type ContainerConfig } from '../../gen/runtime/v1/api.js';

/**
 * What a container of a gVisor pod (runtime_type "sandbox") cannot have, refused before
 * anything is made. Each such container is a gVisor sandbox of its own (see
 * runtime/handler.ts): its kernel keeps its own PID and IPC namespaces, so neither the
 * host's nor a named container's can be joined, and its mounts never propagate back
 * to the host. PID mode POD is let through and gives the container its own PID
 * namespace, as it does for runc in a pod without a shared one: POD is the proto's
 * default, sent by clients that mean nothing by it (critest, crictl configs), so
 * refusing it would refuse them; a pod that truly shares (shareProcessNamespace)
 * sees only its own processes in each container (README, "Sandboxed pods").
 */
export function checkSandboxContainer(config: ContainerConfig, handler: string): void {
  const ns = config.linux?.securityContext?.namespaceOptions;
  const why = `runtime handler "${handler}" runs each container in its own gVisor sandbox`;
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
