import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { OpContext } from '../../core/context.js';
import { isFullId } from '../../core/ids.js';
import { CREATED_CGROUPS_FILE, DEFAULT_CGROUP_PARENT, type PodsDeps } from './pods-deps.js';
import type { Sandbox } from './sandbox-store.js';

/**
 * Reloads sandbox records. A pod stays READY only if what it runs on is still there:
 * its pinned namespaces (gone after a reboot, /run being tmpfs) and its init for a
 * shared PID namespace. Otherwise it is marked NOTREADY; its CNI cache still lets
 * Stop/Remove release the IP and host-side rules. Then leftovers of RunPodSandbox calls
 * a crash interrupted (no record was written) are released.
 */
export async function recoverSandboxes(ctx: OpContext, deps: PodsDeps): Promise<void> {
  // First end CNI plugins the dead daemon left running for its pods, so none of them
  // adds a veth or an IP after the releases below.
  const strays = deps.host.findStrayPlugins(deps.podsRunDir);
  if (strays.length > 0) {
    ctx.log.warn({ pids: strays }, 'ending CNI plugins left running by the previous daemon');
    await deps.host.killAndWait(strays);
  }
  const { loaded, unreadable } = await deps.store.load();
  for (const p of unreadable) ctx.log.warn({ problem: `${p.id}: ${p.reason}` }, 'unreadable pod sandbox record skipped');
  let ready = 0;
  for (const sb of loaded) {
    if (sb.status.state !== 'ready') continue;
    const why = brokenBecause(deps, sb);
    if (why === undefined) {
      ready++;
      continue;
    }
    ctx.log.warn({ pod: sb.id, why }, 'pod sandbox no longer intact; marking it NOTREADY');
    sb.status = { ...sb.status, state: 'notready', initPid: null };
    deps.store.releasePorts(sb.id);
    await deps.store.update(sb).catch((err: unknown) => ctx.log.warn({ err, pod: sb.id }, 'cannot save pod record'));
  }
  await finishInterruptedStops(ctx, deps, loaded);
  const known = new Set(loaded.map((s) => s.id));
  await releaseOrphans(ctx, deps, known, new Set(unreadable.map((p) => p.id)));
  // CNI 1.1 GC: plugins drop whatever belongs to no live attachment (a no-op before 1.1.0).
  await deps.cni.gc(ctx, [...known]).catch((err: unknown) => ctx.log.warn({ err }, 'CNI GC failed'));
  ctx.log.info({ pods: loaded.length, ready }, 'pod sandboxes recovered');
}

/**
 * A NOTREADY pod still holding a CNI attachment is one whose StopPodSandbox was cut
 * short (it is marked before it acts), or whose namespaces vanished: release its
 * network now rather than hold its IP and host rules until kubelet comes back to it.
 */
async function finishInterruptedStops(ctx: OpContext, deps: PodsDeps, loaded: readonly Sandbox[]): Promise<void> {
  const attached = new Set(await deps.cni.cachedPodIds().catch(() => []));
  for (const sb of loaded) {
    if (sb.status.state !== 'notready' || !attached.has(sb.id)) continue;
    try {
      await deps.cni.tearDown(ctx, sb.id);
      deps.store.releasePorts(sb.id);
      sb.status = { ...sb.status, ips: [] };
      await deps.store.update(sb);
      ctx.log.info({ pod: sb.id }, 'finished the network teardown of a stopped pod');
    } catch (err) {
      ctx.log.warn({ err, pod: sb.id }, 'cannot release the network of a stopped pod; StopPodSandbox will retry');
    }
  }
}

function brokenBecause(deps: PodsDeps, sb: Sandbox): string | undefined {
  const m = sb.meta;
  for (const p of [m.netnsPath, m.ipcnsPath, m.utsnsPath, m.userns?.path]) if (p && !deps.host.isMountPoint(p)) return `namespace ${p} is gone`;
  if (m.pidnsPath) {
    if (sb.status.initPid === null || !deps.host.isPodInit(sb.status.initPid, m.pidnsPath)) return 'the pod init process is gone';
  }
  if (m.sandboxInfra && !deps.host.sandboxInfraAlive(m.sandboxInfra)) return "the pod's gVisor sandbox is gone";
  return undefined;
}

/** Undo what an interrupted RunPodSandbox left: CNI attachment, run dir with pins and shm, init. */
async function releaseOrphans(ctx: OpContext, deps: PodsDeps, known: Set<string>, unreadable: Set<string>): Promise<void> {
  const keep = (id: string) => known.has(id) || unreadable.has(id);
  for (const id of await deps.cni.cachedPodIds().catch(() => [])) {
    if (keep(id)) continue;
    await deps.cni.tearDown(ctx, id).then(
      () => ctx.log.info({ pod: id }, 'released the network of an unfinished pod'),
      (err: unknown) => ctx.log.warn({ err, pod: id }, 'cannot release the network of an unfinished pod'),
    );
  }
  const runDirs = existsSync(deps.podsRunDir) ? readdirSync(deps.podsRunDir) : [];
  for (const id of runDirs) {
    if (!isFullId(id) || keep(id)) continue;
    const dir = join(deps.podsRunDir, id);
    try {
      // A gVisor sandbox first: it holds the network namespace and its cgroup is inside the pod's.
      const infra = deps.host.readSandboxNote(dir);
      if (infra) {
        await deps.host.removeSandboxInfra(ctx, infra);
        await deps.host.removeLeafCgroup(infra.cgroupsPath);
      }
      const pidns = join(dir, 'ns', 'pid');
      if (existsSync(pidns)) await deps.host.stopPodInit(deps.host.findPodInit(pidns), pidns);
      for (const ns of ['net', 'ipc', 'uts', 'user']) await deps.host.unpinNamespace(join(dir, 'ns', ns));
      await deps.host.unmountShm(join(dir, 'shm'));
      const noted = join(dir, CREATED_CGROUPS_FILE);
      if (existsSync(noted)) await deps.host.removeCgroup(JSON.parse(readFileSync(noted, 'utf8')) as string[]);
      await deps.host.removeCgroupIfUnused(DEFAULT_CGROUP_PARENT).catch(() => {});
      await rm(dir, { recursive: true, force: true });
      ctx.log.info({ pod: id }, 'removed the files of an unfinished pod');
    } catch (err) {
      ctx.log.warn({ err, pod: id }, 'cannot remove the files of an unfinished pod');
    }
  }
  // Pod cgroups are found through the note in the run dir, never by sweeping /cricket:
  // it is shared by every daemon on the host.
}
