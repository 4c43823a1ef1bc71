import { join } from 'node:path';
import { backgroundContext, type OpContext } from '../../core/context.js';
import { CricketError, failedPrecondition } from '../../core/errors.js';
import { ContainerEventType } from '../../gen/runtime/v1/api.js';
import { parentCgroup } from '../../host/cgroups.js';
import { overlayPaths } from '../../host/overlay.js';
import { IDMAPPED_DIR, IMAGE_VOLUMES_DIR, type Container } from './container-store.js';
import type { ContainersDeps } from './containers-deps.js';
import { containerEvent } from './to-cri.js';

const nowNs = () => String(BigInt(Date.now()) * 1_000_000n);
/** How long after its start a container's program is given to install its stop-signal handler. */
const HANDLER_GRACE_MS = 1000;
/** How long to wait for an exit after SIGKILL before calling the container stuck. */
const KILL_WAIT_MS = 15_000;

/**
 * conmon wrote an exit file: RUNNING (or a CREATED one being started) → EXITED. The
 * reason follows the exit: conmon's oom file means OOMKilled.
 */
export async function recordExit(deps: ContainersDeps, c: Container, exitCode: number): Promise<void> {
  if (c.status.state === 'exited') return;
  const oom = deps.host.conmonSawOom(c.meta.bundleDir) || oomKilledInGoneScope(deps, c, exitCode);
  const finishedAt = nowNs();
  c.status = {
    ...c.status,
    state: 'exited',
    exitCode,
    finishedAt,
    startedAt: c.status.startedAt === '0' ? finishedAt : c.status.startedAt,
    reason: oom ? 'OOMKilled' : exitCode === 0 ? 'Completed' : 'Error',
    message: oom ? 'the container exceeded its memory limit and was killed' : c.status.message,
  };
  c.notifyExit();
  try {
    await deps.store.update(c);
  } catch (err) {
    deps.log.error({ err, container: c.id }, 'cannot save container exit');
  }
  // kubelet's evented PLEG must see STARTED before STOPPED: while a start is under way
  // (the process may exit before runc start returns), the start publishes both.
  if (c.starting) c.stoppedEventDeferred = true;
  else deps.events.publish(containerEvent(deps, c, ContainerEventType.CONTAINER_STOPPED_EVENT));
  deps.log.info({ container: c.id, exitCode, reason: c.status.reason }, 'container exited');
  // Its pod's gVisor sandbox may have gone with it (OOM-killed): the pod is NOTREADY then.
  if (c.meta.joinedSandbox !== undefined) void deps.pods.checkSandbox(c.meta.podSandboxId).catch(() => {});
}

/**
 * The systemd driver's scope is removed by systemd as soon as its last process is gone,
 * often before conmon (2.1.6) reads its memory.events after an OOM kill, so conmon
 * writes no oom file (containers/conmon#426; containerd skips critest's OOMKilled spec
 * for systemd cgroups). The pod's cgroup stays, and its memory.events counts OOM kills
 * below it: a SIGKILL exit we did not cause, with more kills there than when the
 * container was made, is taken as this container's. Another container of the same pod
 * killed by the kernel in that window could be taken for an OOM kill too.
 */
function oomKilledInGoneScope(deps: ContainersDeps, c: Container, exitCode: number): boolean {
  if (c.meta.podOomKills === undefined || exitCode !== 137 || c.stopping) return false;
  return deps.host.readOomKills(parentCgroup(c.meta.cgroupsPath)) > c.meta.podOomKills;
}

export async function startContainer(ctx: OpContext, deps: ContainersDeps, c: Container): Promise<void> {
  if (c.status.state !== 'created' || c.starting || c.removing) {
    throw failedPrecondition(`container ${c.id} is ${c.starting ? 'already starting' : c.removing ? 'being removed' : c.status.state}; only a created container can be started`);
  }
  c.starting = true;
  try {
    const runtime = deps.runtimeOf(c);
    try {
      await runtime.start(ctx, c.id, c.status.pid);
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      // The process runc created still waits to be started, and conmon with it: end
      // both, or an EXITED container would hold them until removed. Not bound to the
      // caller's signal, which may be why the start failed.
      await runtime.kill({ ...ctx, signal: AbortSignal.timeout(10_000) }, c.id, 'SIGKILL').catch(() => {});
      // gVisor: the container's memory limit bounds its whole sandbox, so a workload that
      // fills it at once can get the sandbox OOM-killed before `runsc start` returns
      // ("containerManager.StartRoot failed: EOF"). The container did start and ran out
      // of memory: say so, as a runc container's exit would, rather than StartError.
      if (c.meta.runtimeType === 'sandbox' && (deps.host.conmonSawOom(c.meta.bundleDir) || deps.host.readOomKills(c.meta.cgroupsPath) > 0)) {
        const now = nowNs();
        c.status = {
          ...c.status,
          state: 'exited',
          exitCode: 137,
          startedAt: c.status.startedAt === '0' ? now : c.status.startedAt,
          finishedAt: (c.status.state as string) === 'exited' ? c.status.finishedAt : now,
          reason: 'OOMKilled',
          message: 'the container exceeded its memory limit and was killed (its gVisor sandbox, while starting)',
        };
        c.notifyExit();
        await deps.store.update(c);
        deps.events.publish(containerEvent(deps, c, ContainerEventType.CONTAINER_STARTED_EVENT));
        c.stoppedEventDeferred = true; // published by the finally below, after STARTED
        ctx.log.info({ container: c.id }, 'container OOM-killed while its gVisor sandbox started');
        return;
      }
      c.status = { ...c.status, state: 'exited', exitCode: 128, finishedAt: nowNs(), reason: 'StartError', message: msg.slice(0, 2000) };
      c.notifyExit();
      c.stoppedEventDeferred = false; // this STOPPED is the one
      await deps.store.update(c);
      deps.events.publish(containerEvent(deps, c, ContainerEventType.CONTAINER_STOPPED_EVENT));
      throw new CricketError('Internal', `start container ${c.id}: ${msg}`, { cause: err });
    }
    // The process may already have exited before runc start returned: recordExit then
    // gave it a start time no later than its finish, which is kept.
    const now = c.status.state as string;
    if (now !== 'exited') c.status = { ...c.status, state: 'running', startedAt: nowNs() };
    deps.events.publish(containerEvent(deps, c, ContainerEventType.CONTAINER_STARTED_EVENT));
    await deps.store.update(c);
    // An exit file may have landed between runc start and the watch seeing it.
    if (c.status.state === 'running') await deps.exits.check(c.id);
  } finally {
    c.starting = false;
    if (c.stoppedEventDeferred) {
      c.stoppedEventDeferred = false;
      deps.events.publish(containerEvent(deps, c, ContainerEventType.CONTAINER_STOPPED_EVENT));
    }
  }
}

/**
 * Stop signal, then SIGKILL after timeoutSec (0: at once). Idempotent: a container
 * that is not running is left as it is.
 */
export async function stopContainer(ctx: OpContext, deps: ContainersDeps, c: Container, timeoutSec: number): Promise<void> {
  if (c.status.state !== 'running') return;
  c.stopping = true;
  try {
    const runtime = deps.runtimeOf(c);
    if (timeoutSec > 0) {
      // Just started, its program may not have its handler yet: an init of its own PID
      // namespace would drop the signal (host/signal-ready.ts). Waited for only within the
      // first moments of its life; a gVisor container's pid is its sandbox, not the program.
      const sinceStart = Date.now() - Number(BigInt(c.status.startedAt) / 1_000_000n);
      if (c.meta.runtimeType !== 'sandbox' && sinceStart < HANDLER_GRACE_MS) {
        await deps.host.waitUntilSignalReaches(c.status.pid, c.meta.stopSignal as NodeJS.Signals, Math.min(HANDLER_GRACE_MS - sinceStart, timeoutSec * 1000));
      }
      await runtime.kill(ctx, c.id, c.meta.stopSignal);
      if (await waitExit(deps, c, timeoutSec * 1000)) return await releaseRuntime(ctx, deps, c);
    }
    await runtime.kill(ctx, c.id, 'SIGKILL');
    if (await waitExit(deps, c, KILL_WAIT_MS)) return await releaseRuntime(ctx, deps, c);
    // Was the exit missed? Ask the runtime before giving up.
    const st = await runtime.state(ctx, c.id).catch(() => undefined);
    if (!st || st.status === 'stopped') {
      await recordExit(deps, c, 137);
      return await releaseRuntime(ctx, deps, c);
    }
    throw new CricketError('Internal', `container ${c.id} did not exit ${KILL_WAIT_MS / 1000} s after SIGKILL`);
  } finally {
    c.stopping = false;
  }
}

/**
 * A created, never started container that joined its pod's gVisor sandbox, when the
 * pod stops: it can never start (the sandbox goes), and its holder, waiting for the
 * start in the sandbox's memory cgroup, would keep runsc from removing that cgroup. So
 * it is deleted from runsc, which ends the holder; conmon reports the exit (137).
 */
export async function endUnstartedJoined(ctx: OpContext, deps: ContainersDeps, c: Container): Promise<void> {
  if (c.status.state !== 'created' || c.meta.joinedSandbox === undefined || c.starting || c.removing) return;
  c.status = { ...c.status, message: "its pod's gVisor sandbox was stopped before the container was started" };
  await deps.runtimeOf(c).delete(ctx, c.id);
  if (!(await waitExit(deps, c, KILL_WAIT_MS))) await recordExit(deps, c, 137);
}

async function waitExit(deps: ContainersDeps, c: Container, ms: number): Promise<boolean> {
  if (await c.waitExit(ms)) return true;
  await deps.exits.check(c.id);
  return c.status.state === 'exited';
}

/**
 * An exited container needs nothing more from its runtime: it is deleted there as soon
 * as its exit is seen, as containerd deletes the task in its exit handler. A stop does
 * it before returning (StopContainer, as containerd's), an exit of its own in the
 * background (releaseRuntimeSoon), and the rootfs is unmounted with it, so
 * RemoveContainer has only files and records left. A failure is only logged: RemoveContainer deletes again.
 */
async function releaseRuntime(ctx: OpContext, deps: ContainersDeps, c: Container): Promise<void> {
  if (c.runtimeReleased || c.status.state !== 'exited' || deps.store.get(c.id) !== c) return;
  try {
    await deps.runtimeOf(c).delete(ctx, c.id);
    // Nothing runs on the rootfs any more (containerd's shim unmounts it at task delete
    // too); the writable layer stays, for stats and until RemoveContainer.
    await deps.host.unmountOverlay(overlayPaths(c.meta.bundleDir, c.meta.layerDir).target, ctx.signal);
    c.runtimeReleased = true;
  } catch (err) {
    ctx.log.warn({ err, container: c.id }, 'cannot delete an exited container from its runtime yet; RemoveContainer will');
  }
}

/** releaseRuntime under the container's lock: after a start or stop under way; a removal that got the lock first deletes it itself. */
export function releaseRuntimeSoon(deps: ContainersDeps, c: Container): Promise<void> {
  return deps.mutex.run(c.id, async () => {
    if (!c.removing) await releaseRuntime(backgroundContext(deps.log, `release-${c.id.slice(0, 12)}`), deps, c);
  });
}

/** Kills if running, deletes from the runtime, unmounts, removes files and records. Idempotent. */
export async function removeContainer(ctx: OpContext, deps: ContainersDeps, c: Container): Promise<void> {
  if (c.removing) return;
  c.removing = true;
  try {
    if (c.status.state === 'running') await stopContainer(ctx, deps, c, 0);
    if (!c.runtimeReleased) {
      await deps.runtimeOf(c).delete(ctx, c.id);
      await deps.host.unmountOverlay(overlayPaths(c.meta.bundleDir, c.meta.layerDir).target, ctx.signal);
    }
    // A container that joined a gVisor sandbox: nothing of its conmon and holder stays
    // (a holder waiting for a start that runsc no longer knows of would wait forever).
    if (c.meta.joinedSandbox !== undefined) deps.host.killConmon(c.meta.bundleDir, c.id);
    // runsc leaves the cgroup, a lock file and a socket of a sandbox that died before it
    // knew it (an OOM kill while starting): nothing to do when they are gone already.
    if (c.meta.runtimeType === 'sandbox') {
      await deps.host.removeLeafCgroup(c.meta.cgroupsPath);
      await deps.host.removeSandboxLeftovers(c.meta.runtimeRoot, c.id);
    }
    // The record lists every image volume mounted (a crash before the record is the orphan clean-up's).
    if (c.meta.imageVolumes.length > 0) await deps.host.unmountUnder(join(c.meta.bundleDir, IMAGE_VOLUMES_DIR), ctx.signal);
    // Idmapped views go once runc has bound them; a crash in between leaves them here, and
    // a delete must never walk into a bound volume.
    await deps.host.unmountUnder(join(c.meta.bundleDir, IDMAPPED_DIR), ctx.signal);
    // Independent of each other, and all redone by a retry while the records stand. The
    // trees are renamed aside and deleted in the background (host/discard.ts).
    await Promise.all([
      deps.host.discard(c.meta.bundleDir),
      deps.host.discard(join(deps.dirs.sockets, c.id)),
      deps.host.discard(c.meta.layerDir),
      deps.exits.forget(c.id),
    ]);
    await deps.store.remove(c);
    deps.images.release(c.meta.imageId, c.id);
    for (const v of c.meta.imageVolumes) deps.images.release(v.imageId, c.id);
    deps.events.publish(containerEvent(deps, c, ContainerEventType.CONTAINER_DELETED_EVENT));
    ctx.log.info({ container: c.id }, 'container removed');
  } finally {
    c.removing = false;
  }
}
