import { existsSync } from 'node:fs';
import { chown, mkdir, rm, rmdir } from 'node:fs/promises';
import { hostname as osHostname } from 'node:os';
import { join } from 'node:path';
import { withRollback } from '../../core/rollback.js';
import { newId, type SandboxId } from '../../core/ids.js';
import { failedPrecondition, wrap } from '../../core/errors.js';
import { ContainerEventType, PodSandboxConfig } from '../../gen/runtime/v1/api.js';
import { defaultPodCgroup } from '../../host/cgroups.js';
import { missingPodCgroups } from '../../host/pod-cgroups.js';
import { restrictOomScoreAdj } from '../../host/pod-init.js';
import { DEFAULT_SHM_BYTES } from '../../host/shm.js';
import type { UnaryHandler } from '../../core/rpc.js';
import { cleanupContext } from '../../cni/cni-manager.js';
import { RUN_ROOT_FILE, writePodHosts, writePodResolvConf } from './pod-files.js';
import { CREATED_CGROUPS_FILE, type PodsDeps } from './pods-deps.js';
import { publishPodEvent } from './pod-events.js';
import { writeFileAtomic } from '../../store/atomic-write.js';
import { toBase64 } from '../../store/proto-base64.js';
import { Sandbox, type SandboxMeta, type SandboxStatus } from './sandbox-store.js';
import { resolveHandler } from '../../runtime/handler.js';
import { INFRA_DIR } from '../../runtime/pod-sandbox.js';
import { buildInfraSpec } from '../../oci/infra-spec.js';
import { checkLogDirectoryOnDisk, planPod } from './validate.js';

// kubelet gives the sandbox this score; we clamp it to what the daemon may set.
const SANDBOX_OOM_SCORE_ADJ = -998;

/**
 * RunPodSandbox: validate everything, reserve the name and host ports, then create
 * the pod step by step — run dir, cgroup, pinned namespaces (hostname, lo, sysctls),
 * /dev/shm, the PID-namespace init when asked for, the CNI network, hosts and
 * resolv.conf, the records. Each step pushes its undo; any failure unwinds them all.
 */
export function makeRunPodSandbox(deps: PodsDeps): UnaryHandler<'RunPodSandbox'> {
  return async (ctx, req) => {
    const plan = planPod(req, deps.config, osHostname());
    checkLogDirectoryOnDisk(plan.logDirectory, deps.config.logs.allowed_roots);
    const parkedId = deps.store.collect(plan.nameKey);
    const parked = parkedId && deps.store.get(await parkedId);
    if (parked && parked.status.state === 'ready') {
      ctx.log.info({ pod: parked.id, name: plan.nameKey }, 'handing over a pod finished after an earlier deadline');
      return { podSandboxId: parked.id };
    }
    // No usable CNI config: refuse before creating anything (NetworkReady is false too).
    if (!plan.hostNetwork) deps.cni.network();
    // A handler whose binary is missing or does not run: refuse now, in its own words,
    // rather than at the first CreateContainer (Status shows it not ready too).
    const probe = await deps.host.probeHandler(deps.config.runtime.handlers[plan.runtimeHandler]!);
    if (!probe.ok) throw failedPrecondition(`runtime handler "${plan.runtimeHandler}" cannot run: ${probe.message}`);
    if (plan.userns) {
      const can = await deps.host.probeUserNamespaces(deps.config.daemon.root, deps.config.daemon.run_root);
      if (!can.ok) throw failedPrecondition(`this node cannot give a pod its own user namespace: ${can.reason}`);
    }
    const id = newId<SandboxId>();
    // The steps do not stop at the caller's deadline (each has its own timeout): a pod
    // that finishes late is parked for kubelet's retry instead of being undone.
    const work = { requestId: ctx.requestId, log: ctx.log, span: ctx.span, signal: new AbortController().signal };
    return withRollback(ctx.log, async (rb) => {
      deps.store.reserveName(plan.nameKey, id);
      rb.push('release name', () => deps.store.releaseName(plan.nameKey, id));
      deps.store.reservePorts(id, plan.portMappings);
      rb.push('release host ports', () => deps.store.releasePorts(id));

      const podDir = join(deps.podsRunDir, id);
      await mkdir(podDir, { recursive: true, mode: 0o711 });
      rb.push('remove pod dir', () => rm(podDir, { recursive: true, force: true }));

      if (plan.logDirectory !== '' && !existsSync(plan.logDirectory)) {
        await mkdir(plan.logDirectory, { recursive: true, mode: 0o755 });
        rb.push('remove log dir', () => rmdir(plan.logDirectory).catch(() => {}));
      }

      const driver = deps.config.runtime.cgroup_driver;
      const cgroupParent = plan.cgroupParent !== '' ? plan.cgroupParent : defaultPodCgroup(id, driver);
      // Noted before creating too: a crash inside ensureCgroup, or before the note
      // below, would otherwise leave cgroups that recovery cannot find.
      await writeFileAtomic(join(podDir, CREATED_CGROUPS_FILE), JSON.stringify(missingPodCgroups(cgroupParent, driver)), 0o600, RUN_ROOT_FILE);
      const createdCgroups = await step('create pod cgroup', () => deps.host.ensureCgroup(cgroupParent, driver, work.signal));
      rb.push('remove pod cgroup', () => deps.host.removeCgroup(createdCgroups));
      // Noted beside the pins so recovery can undo a creation that a crash interrupted.
      await writeFileAtomic(join(podDir, CREATED_CGROUPS_FILE), JSON.stringify(createdCgroups), 0o600, RUN_ROOT_FILE);

      const nsDir = join(podDir, 'ns');
      // hostUsers: false: the pod's user namespace, pinned first; the others are made inside it.
      const userns = plan.userns && { path: join(nsDir, 'user'), ...plan.userns };
      const podRoot = userns && { uid: userns.uidMappings[0]!.hostId, gid: userns.gidMappings[0]!.hostId };
      if (userns) rb.push(`unpin ${userns.path}`, () => deps.host.unpinNamespace(userns.path));
      const netnsPath = plan.hostNetwork ? undefined : join(nsDir, 'net');
      const ipcnsPath = plan.hostIpc ? undefined : join(nsDir, 'ipc');
      // A host-network pod keeps the node's hostname, as kubelet expects.
      const utsnsPath = plan.hostNetwork ? undefined : join(nsDir, 'uts');
      for (const p of [netnsPath, ipcnsPath, utsnsPath]) if (p) rb.push(`unpin ${p}`, () => deps.host.unpinNamespace(p));
      await step('create pod namespaces', () =>
        deps.host.pinNamespaces({ user: userns, netPath: netnsPath, ipcPath: ipcnsPath, utsPath: utsnsPath, hostname: plan.hostname, sysctls: plan.sysctls, signal: work.signal }),
      );

      let shmPath: string | undefined;
      if (!plan.hostIpc) {
        shmPath = join(podDir, 'shm');
        const p = shmPath;
        rb.push('unmount shm', () => deps.host.unmountShm(p));
        await step('mount pod /dev/shm', () => deps.host.mountShm(p, DEFAULT_SHM_BYTES, work.signal, podRoot));
      }

      let pidnsPath: string | undefined;
      let initPid: number | null = null;
      if (plan.sharedPid) {
        pidnsPath = join(nsDir, 'pid');
        const p = pidnsPath;
        const init = await step('start pod init', () =>
          deps.host.startPodInit({
            catatonit: deps.config.runtime.catatonit,
            pidnsPath: p,
            usernsPath: userns?.path,
            netnsPath,
            ipcnsPath,
            utsnsPath,
            oomScoreAdj: SANDBOX_OOM_SCORE_ADJ,
            restrictOomScoreAdj: restrictOomScoreAdj(deps.config.runtime.restrict_oom_score_adj),
            signal: work.signal,
          }),
        );
        initPid = init.pid;
        rb.push('stop pod init', () => deps.host.stopPodInit(init.pid, p));
        const initCgroups = await step('move pod init into the pod cgroup', () => deps.host.placePodInit(cgroupParent, id, init.pid, driver, work.signal));
        createdCgroups.push(...initCgroups);
        await writeFileAtomic(join(podDir, CREATED_CGROUPS_FILE), JSON.stringify(createdCgroups), 0o600, RUN_ROOT_FILE);
      }

      let ips: string[] = [];
      let network: string | null = null;
      if (netnsPath) {
        const md = plan.config.metadata!;
        const capabilityArgs: Record<string, unknown> = {};
        if (plan.portMappings.length > 0) capabilityArgs['portMappings'] = plan.portMappings;
        if (plan.bandwidth) capabilityArgs['bandwidth'] = plan.bandwidth;
        if (plan.ips) capabilityArgs['ips'] = plan.ips;
        const dns = plan.config.dnsConfig;
        if (dns && (dns.servers.length || dns.searches.length || dns.options.length)) {
          capabilityArgs['dns'] = { servers: dns.servers, searches: dns.searches, options: dns.options };
        }
        rb.push('tear down pod network', () => deps.cni.tearDown(cleanupContext(ctx, deps.config.network.plugin_timeout_seconds * 1000), id));
        const att = await deps.cni.setUp(work, {
          podId: id,
          netnsPath,
          args: {
            IgnoreUnknown: '1',
            K8S_POD_NAMESPACE: md.namespace,
            K8S_POD_NAME: md.name,
            K8S_POD_INFRA_CONTAINER_ID: id,
            K8S_POD_UID: md.uid,
          },
          capabilityArgs,
        });
        ips = att.ips;
        network = att.network;
      }

      const hostsPath = join(podDir, 'hosts');
      const resolvConfPath = join(podDir, 'resolv.conf');
      await step('write pod hosts file', () => writePodHosts(hostsPath, plan.hostNetwork, plan.hostname, ips));
      await step('write pod resolv.conf', () => writePodResolvConf(resolvConfPath, plan.config.dnsConfig));
      // The pod's root owns its files, as it would own them on a node of its own (the
      // host's root is nobody inside).
      if (podRoot) for (const f of [hostsPath, resolvConfPath]) await step(`hand ${f} to the pod's root`, () => chown(f, podRoot.uid, podRoot.gid));

      // A gVisor handler: the pod's one sandbox, which every container of the pod joins.
      let sandboxInfra: SandboxMeta['sandboxInfra'] = null;
      const handler = resolveHandler(deps.config, plan.runtimeHandler)!;
      if (handler.type === 'sandbox') {
        const cgroupsPath = `${cgroupParent}/${id}`;
        const infra = { id, runtimePath: handler.path, runtimeRoot: handler.root, runtimeArgs: [...handler.args], bundleDir: join(podDir, INFRA_DIR), cgroupsPath };
        rb.push('remove gVisor sandbox', async () => {
          await deps.host.removeSandboxInfra(cleanupContext(ctx, 30_000), infra);
          await deps.host.removeLeafCgroup(cgroupsPath);
        });
        const spec = buildInfraSpec({
          sandboxId: id,
          rootfsPath: join(infra.bundleDir, 'rootfs'),
          catatonitPath: deps.config.runtime.catatonit,
          hostname: plan.hostname,
          netnsPath,
          cgroupsPath,
          privileged: plan.config.linux?.securityContext?.privileged ?? false,
          bounding: deps.host.boundingSet(),
        });
        await step("start the pod's gVisor sandbox", () => deps.host.startSandboxInfra(work, infra, spec, podDir));
        sandboxInfra = infra;
      }

      const meta: SandboxMeta = {
        v: 2,
        id,
        nameKey: plan.nameKey,
        config: toBase64(PodSandboxConfig, plan.config),
        runtimeHandler: plan.runtimeHandler,
        runtimeHandlerAsked: req.runtimeHandler,
        createdAt: String(BigInt(Date.now()) * 1_000_000n),
        podDir,
        netnsPath: netnsPath ?? null,
        ipcnsPath: ipcnsPath ?? null,
        utsnsPath: utsnsPath ?? null,
        pidnsPath: pidnsPath ?? null,
        userns: userns ?? null,
        hostname: plan.hostname,
        hostsPath,
        resolvConfPath,
        shmPath: shmPath ?? null,
        cgroupParent,
        createdCgroups,
        logDirectory: plan.logDirectory,
        portMappings: plan.portMappings,
        sandboxInfra,
      };
      const status: SandboxStatus = { v: 2, state: 'ready', ips, network, initPid };
      const sb = new Sandbox(meta, status);
      rb.push('delete records', () => deps.store.remove(sb));
      await step('save pod record', () => deps.store.add(sb));
      publishPodEvent(deps, sb, ContainerEventType.CONTAINER_CREATED_EVENT);
      publishPodEvent(deps, sb, ContainerEventType.CONTAINER_STARTED_EVENT);
      if (ctx.signal.aborted) {
        // Kept until the retry collects it or the pod is removed (kubelet lists it too).
        deps.store.park(plan.nameKey, id);
        ctx.log.warn({ pod: id, name: plan.nameKey }, 'pod sandbox ready after the caller gave up; kept for its retry');
      } else ctx.log.debug({ pod: id, name: plan.nameKey, ips }, 'pod sandbox ready');
      return { podSandboxId: id };
    });
  };
}

async function step<T>(action: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw wrap(err, action);
  }
}
