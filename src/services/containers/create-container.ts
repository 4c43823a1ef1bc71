import { dirname, join, posix } from 'node:path';
import { backgroundContext, type OpContext } from '../../core/context.js';
import { abortError, failedPrecondition, invalidArgument, notFound, wrap } from '../../core/errors.js';
import { newId, type ContainerId } from '../../core/ids.js';
import { withRollback, type Rollback } from '../../core/rollback.js';
import { ContainerConfig, ContainerEventType, NamespaceMode, SupplementalGroupsPolicy } from '../../gen/runtime/v1/api.js';
import { containerCgroupsPath } from '../../host/cgroups.js';
import { overlayPaths } from '../../host/overlay.js';
import { toBase64 } from '../../store/proto-base64.js';
import type { UnaryHandler } from '../../core/rpc.js';
import { allowedPodAnnotations } from '../../oci/annotations.js';
import type { IdRange, ResolvedMount } from '../../oci/mounts.js';
import { buildSpec } from '../../oci/spec.js';
import { resolveUser } from '../../oci/user.js';
import { Container, ContainerStore, IDMAPPED_DIR, IMAGE_VOLUMES_DIR, type ContainerMeta } from './container-store.js';
import { handlerFor, type ContainersDeps } from './containers-deps.js';
import { checkSandboxContainer } from './sandbox-limits.js';
import { removeContainer } from './lifecycle.js';
import { joinWrapperArgs, joinWrapperPath } from '../../runtime/pod-sandbox.js';
import { containerEvent } from './to-cri.js';

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,252}$/;
const CONMON_TIMEOUT_MS = 60_000;
const CREATE_MAX_MS = 120_000;
/** How long a create that outlived its caller waits for kubelet's retry before it is undone. */
const PARK_TTL_MS = 5 * 60_000;

/**
 * CreateContainer: reserve name/attempt in the pod, mount an overlay rootfs, write the
 * OCI bundle, have conmon run `runc create`. Every side effect pushes its undo; a
 * failure leaves nothing behind (no bundle, mount, layer dir, record or name).
 */
export function makeCreateContainer(deps: ContainersDeps): UnaryHandler<'CreateContainer'> {
  return async (ctx, req) => {
    const { host } = deps;
    const config = req.config;
    if (!config) throw invalidArgument('CreateContainer needs a config');
    const md = config.metadata;
    if (!md || !md.name) throw invalidArgument('container config.metadata.name is required');
    if (!NAME.test(md.name)) throw invalidArgument(`container name "${md.name.slice(0, 64)}" must be letters, digits, "_", "." or "-" (at most 253)`);
    const pod = deps.pods.get(req.podSandboxId);
    if (!pod) throw notFound(`pod sandbox "${req.podSandboxId}" not found`);
    if (pod.state !== 'ready') throw failedPrecondition(`pod sandbox ${pod.id} is not ready (it was stopped); containers can only be created in a ready pod`);
    const imageRef = config.image?.image ?? '';
    if (!imageRef) throw invalidArgument('container config.image.image is required');
    const image = deps.images.lookup(imageRef);
    if (!image) throw notFound(`image "${imageRef}" is not present on this node; pull it first`);

    let logPath = '';
    if (config.logPath) {
      if (!pod.logDirectory) throw invalidArgument('log_path was given but the pod has no log_directory');
      if (posix.isAbsolute(config.logPath) || config.logPath.split('/').includes('..')) {
        throw invalidArgument(`log_path "${config.logPath}" must be relative to the pod's log_directory without ".."`);
      }
      logPath = join(pod.logDirectory, config.logPath);
    }
    const handler = handlerFor(deps.config, pod.runtimeHandler);
    const sandboxed = handler.type === 'sandbox';
    // One gVisor sandbox per pod (runtime/pod-sandbox.ts): the container joins it, run
    // by conmon through cricket-runsc-join, which every later runtime call goes through
    // too (the record names it). A gVisor pod recorded before that has no sandbox of its
    // own: each of its containers still gets one.
    const joinSandbox = sandboxed ? pod.gvisorSandboxId : undefined;
    if (sandboxed) checkSandboxContainer(config, handler.name, joinSandbox !== undefined);
    const handlerRuntime = deps.runtime(pod.runtimeHandler);
    const runtime = joinSandbox
      ? host.runtime(joinWrapperPath(), handlerRuntime.root, joinWrapperArgs(handlerRuntime.path, handlerRuntime.args))
      : handlerRuntime;
    // Check inputs that need only the host before any side effect.
    const mounts = await host.resolveMounts(config);
    // Image volumes: each image must be on the node already (kubelet pulls it first).
    for (const m of mounts) {
      if (m.imageRef !== undefined && !deps.images.lookup(m.imageRef)) {
        throw notFound(`image "${m.imageRef}" of the image volume at ${m.containerPath} is not present on this node; pull it first`);
      }
    }
    checkIdmappedMounts(mounts, pod);
    const devices = await host.resolveDevices(config);
    const localhostSeccomp = await host.loadLocalhostSeccomp(config);
    let targetPidnsPath: string | undefined;
    const nsOpts = config.linux?.securityContext?.namespaceOptions;
    if (nsOpts?.pid === NamespaceMode.TARGET) {
      const target = deps.store.resolve(nsOpts.targetId);
      if (!target || target.status.state !== 'running' || target.meta.podSandboxId !== pod.id) {
        throw failedPrecondition(`PID namespace target "${nsOpts.targetId}" is not a running container of this pod`);
      }
      targetPidnsPath = `/proc/${target.status.pid}/ns/pid`;
    }

    const key = ContainerStore.nameKey(pod.id, md.name, md.attempt);
    // kubelet's retry after its deadline expired mid-create: hand over the same container.
    const parked = deps.store.collect(key);
    if (parked) return { containerId: await parked };
    // The work runs on its own clock, not the caller's: if the caller gives up, the
    // finished container is parked for the retry instead of being torn down.
    const work: OpContext = { ...ctx, signal: AbortSignal.timeout(CREATE_MAX_MS) };
    const creating = (async (): Promise<string> => {
      const id = newId<ContainerId>();
      deps.store.reserveName(key, id);
      const bundleDir = join(deps.dirs.run, id);
      const layerDir = join(deps.dirs.layers, id);
      const ov = overlayPaths(bundleDir, layerDir);
      // hostUsers: false: the pod's root must be able to walk into the bundle to its rootfs
      // (runc mounts it from inside the user namespace); nothing in it is readable by others.
      const podRoot = pod.userns && { uid: pod.userns.uidMappings[0]!.hostId, gid: pod.userns.gidMappings[0]!.hostId };
      const idmappedDir = join(bundleDir, IDMAPPED_DIR);
      const container = await withRollback(work.log, async (rb) => {
        rb.push('release name', () => deps.store.releaseName(key, id));
        await host.makeDir(bundleDir, pod.userns ? 0o711 : 0o700);
        rb.push('remove bundle', () => host.removeAll(bundleDir));
        rb.push('remove writable layer', () => host.removeLayerDirs(layerDir));
        // Looked up again and held in one step, before its layers are used: a
        // RemoveImage since the check above has either taken the image (NotFound now)
        // or will see this holder and refuse. Holding it only once the container was
        // recorded let a removal sweep the layers from under the mount.
        if (deps.images.lookup(image.id)?.id !== image.id) {
          throw notFound(`image "${imageRef}" was removed while the container was being created; pull it again`);
        }
        deps.images.retain(image.id, id);
        rb.push('release image', () => deps.images.release(image.id, id));
        if (pod.userns) rb.push('unmount idmapped views', () => host.unmountUnder(idmappedDir));
        try {
          const idmap = pod.userns && podRoot && { usernsPath: pod.userns.path, rootUid: podRoot.uid, rootGid: podRoot.gid, scratchDir: join(idmappedDir, 'layers') };
          await host.mountOverlay(image.layerDirs, ov, work.signal, idmap);
        } catch (err) {
          throw wrap(err, 'mount container rootfs');
        }
        rb.push('unmount rootfs', () => host.unmountOverlay(ov.target));
        const volumes = await mountImageVolumes(deps, id, bundleDir, mounts, work.signal, rb);
        const { imageVolumes } = volumes;
        let { specMounts } = volumes;
        if (pod.userns) {
          const usernsPath = pod.userns.path;
          specMounts = await Promise.all(
            specMounts.map(async (m, i) => {
              if (!m.idmap) return m;
              const view = join(idmappedDir, 'mounts', String(i));
              try {
                await host.idmapMount(m.hostPath, view, usernsPath, work.signal);
              } catch (err) {
                throw wrap(err, `idmap the mount of ${m.hostPath} at ${m.containerPath}`);
              }
              return { ...m, hostPath: view };
            }),
          );
        }

        const sc = config.linux?.securityContext;
        const user = resolveUser({
          runAsUser: sc?.runAsUser?.value,
          runAsGroup: sc?.runAsGroup?.value,
          runAsUsername: sc?.runAsUsername ?? '',
          imageUser: image.config.User,
          supplementalGroups: sc?.supplementalGroups ?? [],
          strictGroups: sc?.supplementalGroupsPolicy === SupplementalGroupsPolicy.Strict,
          passwd: await host.readFileInRoot(ov.target, '/etc/passwd'),
          group: await host.readFileInRoot(ov.target, '/etc/group'),
        });
        const hostnamePath = join(bundleDir, 'hostname');
        await host.writeFile(hostnamePath, `${pod.hostname}\n`);
        if (podRoot) await host.chown(hostnamePath, podRoot.uid, podRoot.gid);
        const cgroupsPath = containerCgroupsPath(pod.cgroupParent || '/cricket', id, deps.config.runtime.cgroup_driver);
        const { spec, stopSignal } = buildSpec({
          config,
          image: image.config,
          sandbox: pod,
          user,
          rootfsPath: ov.target,
          cgroupsPath,
          hostnamePath,
          mounts: specMounts,
          devices,
          targetPidnsPath,
          localhostSeccomp,
          // runsc writes oom_score_adj itself and fails below the daemon's own (root
          // here lacks CAP_SYS_RESOURCE): always clamped for a sandbox.
          facts: sandboxed ? { ...deps.facts(), clampOomScoreAdj: true } : deps.facts(),
          handler: {
            sandboxed,
            ...(joinSandbox ? { joinSandbox } : {}),
            privilegedWithoutHostDevices: handler.config.privileged_without_host_devices,
            podAnnotations: allowedPodAnnotations(pod.config.annotations, handler.config.allowed_annotations),
          },
        });
        // Read by runc once, at create; a new file in a new dir, so no rename or fsync is needed.
        await host.writeFile(join(bundleDir, 'config.json'), JSON.stringify(spec), 0o600);

        const conmonLogPath = logPath || join(bundleDir, 'console.log');
        if (logPath) await host.checkLogPathInside(pod.logDirectory, logPath);
        await host.makeDir(dirname(conmonLogPath));
        if (logPath) await host.checkLogPathInside(pod.logDirectory, logPath);

        rb.push('delete from runtime', async () => {
          await runtime.delete(work, id).catch(() => {});
          // runsc leaves the cgroup, a lock file and a socket of a sandbox that died
          // while being created.
          if (sandboxed) {
            await host.removeLeafCgroup(cgroupsPath).catch(() => {});
            await host.removeSandboxLeftovers(runtime.root, id).catch(() => {});
          }
          host.killConmon(bundleDir, id);
          await deps.exits.forget(id);
        });
        const pid = await host.createWithConmon(work, {
          conmonPath: deps.config.runtime.conmon,
          runtimePath: runtime.path,
          runtimeRoot: runtime.root,
          runtimeArgs: runtime.args,
          id,
          name: md.name,
          bundleDir,
          logPath: conmonLogPath,
          exitDir: deps.dirs.exits,
          socketDir: deps.dirs.sockets,
          stdin: config.stdin,
          stdinOnce: config.stdinOnce,
          tty: config.tty,
          logLevel: 'info',
          timeoutMs: CONMON_TIMEOUT_MS,
          // runsc's --log is its debug log: only runc's goes to a file.
          runtimeLogPath: sandboxed ? undefined : join(bundleDir, 'runtime.log'),
        }).catch((err: unknown) => {
          // A gVisor sandbox counts against the container's memory limit: one too small
          // for gVisor's own kernel gets the sandbox OOM-killed while it boots, which
          // runsc reports only as "waiting for sandbox to start: EOF".
          if (sandboxed && host.readOomKills(cgroupsPath) > 0) {
            const limit = config.linux?.resources?.memoryLimitInBytes ?? 0n;
            throw failedPrecondition(
              `the container's memory limit (${limit} bytes) is too small for its gVisor sandbox, which was OOM-killed while starting: gVisor's kernel counts against the limit too (${err instanceof Error ? err.message : String(err)})`,
              { cause: err },
            );
          }
          throw err;
        });
        // runc has bound the idmapped views into the container's mount namespace: the
        // host needs them no more (fewer mounts; nothing left to leak).
        if (pod.userns) await host.unmountUnder(idmappedDir, work.signal);

        const meta: ContainerMeta = {
          v: 1,
          id,
          podSandboxId: pod.id,
          name: md.name,
          attempt: md.attempt,
          config: toBase64(ContainerConfig, config),
          imageId: image.id,
          imageName: image.repoTags[0] ?? imageRef,
          logPath,
          conmonLogPath,
          bundleDir,
          layerDir,
          runtimeHandler: pod.runtimeHandler,
          runtimePath: runtime.path,
          runtimeRoot: runtime.root,
          runtimeArgs: [...runtime.args],
          runtimeType: handler.type,
          ...(joinSandbox ? { joinedSandbox: joinSandbox } : {}),
          cgroupsPath,
          podOomKills: cgroupsPath.includes(':') ? host.readOomKills(pod.cgroupParent) : undefined,
          stopSignal,
          createdAt: String(BigInt(Date.now()) * 1_000_000n),
          user: { uid: user.uid, gid: user.gid, additionalGids: user.additionalGids, username: user.username },
          imageVolumes,
        };
        const c = new Container(meta, { v: 1, state: 'created', pid, startedAt: '0', finishedAt: '0', exitCode: 0, reason: '', message: '', resources: '' });
        rb.push('drop records', () => deps.store.remove(c));
        await deps.store.add(c);
        return c;
      });
      deps.events.publish(containerEvent(deps, container, ContainerEventType.CONTAINER_CREATED_EVENT));
      work.log.info({ container: id, pod: pod.id, name: md.name, attempt: md.attempt }, 'container created');
      return id;
    })();
    const onAbort = new Promise<never>((_, reject) => {
      const fail = () => reject(abortError(ctx.signal, 'create container'));
      if (ctx.signal.aborted) fail();
      else ctx.signal.addEventListener('abort', fail, { once: true });
    });
    onAbort.catch(() => {});
    try {
      return { containerId: await Promise.race([creating, onAbort]) };
    } catch (err) {
      if (ctx.signal.aborted) {
        // outlivesRecord: the parking outlives a RemoveContainer of the container before
        // the retry, which is then handed the removed id (a parked pod is dropped instead).
        deps.store.park(key, creating, { ttlMs: PARK_TTL_MS, discard: (id) => discardParked(deps, key, id), outlivesRecord: true });
        ctx.log.warn({ name: md.name, attempt: md.attempt }, 'caller gave up during CreateContainer; the container is kept for its retry');
      }
      throw err;
    }
  };
}

/**
 * A CRI mount with uid_mappings/gid_mappings (kubelet sets them on every volume of a
 * hostUsers: false pod) is seen through the pod's user namespace, so its mappings must be
 * the pod's; a pod without one cannot take them.
 */
function checkIdmappedMounts(mounts: readonly ResolvedMount[], pod: { userns?: { uidMappings: readonly IdRange[]; gidMappings: readonly IdRange[] } }): void {
  const same = (a: readonly IdRange[], b: readonly IdRange[]) =>
    a.length === b.length && a.every((m, i) => m.containerId === b[i]!.containerId && m.hostId === b[i]!.hostId && m.length === b[i]!.length);
  for (const m of mounts) {
    if (!m.idmap) continue;
    if (!pod.userns) throw invalidArgument(`mount at ${m.containerPath} has uid/gid mappings, but its pod has no user namespace of its own (hostUsers is not false)`);
    if (!same(m.idmap.uidMappings, pod.userns.uidMappings) || !same(m.idmap.gidMappings, pod.userns.gidMappings)) {
      throw invalidArgument(`mount at ${m.containerPath}: its uid/gid mappings differ from the pod's user namespace; Cricket shows mounts through the pod's own mappings only`);
    }
  }
}

/** A parked create nobody collected within PARK_TTL_MS: removed like RemoveContainer would. */
async function discardParked(deps: ContainersDeps, key: string, id: string): Promise<void> {
  const c = deps.store.get(id);
  if (!c) return;
  const ctx = backgroundContext(deps.log, 'discard-parked-create');
  await deps.mutex.run(id, () => removeContainer(ctx, deps, c)).catch((err: unknown) => deps.log.warn({ err, key }, 'cannot discard an uncollected container create'));
}

/**
 * Each image volume: its image held by the container (RemoveImage refuses while it is)
 * and its layers mounted read-only under the bundle, then bound into the container like
 * any other mount. Looked up again and held in one step, as the rootfs image is.
 */
async function mountImageVolumes(
  deps: ContainersDeps,
  id: string,
  bundleDir: string,
  mounts: readonly ResolvedMount[],
  signal: AbortSignal,
  rb: Rollback,
): Promise<{ specMounts: ResolvedMount[]; imageVolumes: ContainerMeta['imageVolumes'] }> {
  const dir = join(bundleDir, IMAGE_VOLUMES_DIR);
  const imageVolumes: ContainerMeta['imageVolumes'] = [];
  const specMounts: ResolvedMount[] = [];
  for (const [i, m] of mounts.entries()) {
    if (m.imageRef === undefined) {
      specMounts.push(m);
      continue;
    }
    if (imageVolumes.length === 0) rb.push('unmount image volumes', () => deps.host.unmountUnder(dir));
    const img = deps.images.lookup(m.imageRef);
    if (!img) throw notFound(`image "${m.imageRef}" of the image volume at ${m.containerPath} was removed while the container was being created; pull it again`);
    deps.images.retain(img.id, id);
    rb.push(`release volume image ${img.id}`, () => deps.images.release(img.id, id));
    const target = join(dir, String(i));
    try {
      await deps.host.mountReadOnlyLayers(img.layerDirs, target, join(dir, 'empty'), signal);
    } catch (err) {
      throw wrap(err, `mount image volume ${m.imageRef} for ${m.containerPath}`);
    }
    imageVolumes.push({ imageId: img.id, containerPath: m.containerPath });
    specMounts.push({ ...m, hostPath: target, readonly: true });
  }
  return { specMounts, imageVolumes };
}
