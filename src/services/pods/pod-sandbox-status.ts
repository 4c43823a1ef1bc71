import { notFound } from '../../core/errors.js';
import { LinuxContainerResources, NamespaceMode, PodSandboxConfig, PodSandboxState, type PodSandboxStatus } from '../../gen/runtime/v1/api.js';
import type { UnaryHandler } from '../../core/rpc.js';
import type { DeepPartial } from '../../gen/runtime/v1/api.js';
import type { PodsDeps } from './pods-deps.js';
import type { Sandbox } from './sandbox-store.js';

const asJson = (r: LinuxContainerResources | undefined) => (r === undefined ? null : LinuxContainerResources.toJSON(r));

export const stateOf = (sb: Sandbox) => (sb.status.state === 'ready' ? PodSandboxState.SANDBOX_READY : PodSandboxState.SANDBOX_NOTREADY);

export function statusOf(sb: Sandbox): DeepPartial<PodSandboxStatus> {
  const ns = sb.config.linux?.securityContext?.namespaceOptions;
  const [ip, ...rest] = sb.status.ips;
  return {
    id: sb.id,
    metadata: sb.config.metadata,
    state: stateOf(sb),
    createdAt: sb.createdAtNs,
    network: ip === undefined ? undefined : { ip, additionalIps: rest.map((x) => ({ ip: x })) },
    linux: {
      namespaces: {
        options: {
          network: ns?.network ?? NamespaceMode.POD,
          pid: ns?.pid ?? NamespaceMode.POD,
          ipc: ns?.ipc ?? NamespaceMode.POD,
          targetId: ns?.targetId ?? '',
          usernsOptions: ns?.usernsOptions,
        },
      },
    },
    labels: sb.config.labels,
    annotations: sb.config.annotations,
    runtimeHandler: sb.reportedHandler,
  };
}

/** PodSandboxStatus: NotFound exactly for an unknown id (kubelet branches on it). */
export function makePodSandboxStatus(deps: PodsDeps): UnaryHandler<'PodSandboxStatus'> {
  return async (_ctx, req) => {
    const sb = deps.store.resolve(req.podSandboxId);
    if (!sb) throw notFound(`pod sandbox "${req.podSandboxId}" not found`);
    const info: Record<string, string> = {};
    if (req.verbose) {
      const m = sb.meta;
      info['info'] = JSON.stringify({
        id: sb.id,
        pid: sb.status.initPid ?? 0,
        state: sb.status.state,
        runtimeHandler: m.runtimeHandler,
        network: sb.status.network,
        ips: sb.status.ips,
        namespaces: { network: m.netnsPath, ipc: m.ipcnsPath, uts: m.utsnsPath, pid: m.pidnsPath },
        hostname: m.hostname,
        hostsPath: m.hostsPath,
        resolvConfPath: m.resolvConfPath,
        shmPath: m.shmPath,
        cgroupParent: m.cgroupParent,
        logDirectory: m.logDirectory,
        portMappings: m.portMappings,
        resources: asJson(sb.resources),
        overhead: asJson(sb.overhead),
        config: PodSandboxConfig.toJSON(sb.config),
      });
    }
    return { status: statusOf(sb), info, timestamp: BigInt(Date.now()) * 1_000_000n };
  };
}
