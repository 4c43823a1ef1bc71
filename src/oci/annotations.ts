// Which annotations reach a container's OCI spec, and which must not.

/**
 * The pod annotations a handler's allowed_annotations let into its containers' specs
 * (as containerd's pod_annotations and CRI-O's allowed_annotations do): an entry is an
 * exact key, or a prefix when it ends in "*". gVisor reads its dev.gvisor.* ones there.
 */
export function allowedPodAnnotations(pod: Readonly<Record<string, string>>, allowed: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  if (allowed.length === 0) return out;
  for (const [k, v] of Object.entries(pod)) {
    if (allowed.some((a) => (a.endsWith('*') ? k.startsWith(a.slice(0, -1)) : k === a))) out[k] = v;
  }
  return out;
}

/**
 * The annotations with which runsc makes a container JOIN an existing sandbox instead
 * of creating one (containerd's and CRI-O's spellings). Cricket alone decides which
 * sandbox a runsc container joins (its pod's), so a client's copy must not reach the spec.
 */
export const SANDBOX_JOIN_ANNOTATIONS: readonly string[] = [
  'io.kubernetes.cri.container-type',
  'io.kubernetes.cri.sandbox-id',
  'io.kubernetes.cri-o.ContainerType',
  'io.kubernetes.cri-o.SandboxID',
];
