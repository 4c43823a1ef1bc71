import { join } from 'node:path';
import type { OpContext } from '../../core/context.js';
import { isFullId } from '../../core/ids.js';
import { overlayPaths } from '../../host/overlay.js';
import type { ContainersDeps } from './containers-deps.js';
import { IMAGE_VOLUMES_DIR } from './container-store.js';
import { recordExit } from './lifecycle.js';

/**
 * After a restart: reload records, then reconcile each container with the host.
 * Exit files written while we were down are read by the watcher's first scan; a
 * container the runtime no longer knows (e.g. after a reboot) is marked exited with
 * an unknown code rather than reported as running.
 */
export async function recoverContainers(ctx: OpContext, deps: ContainersDeps): Promise<void> {
  const { loaded, unreadable, halfWritten } = await deps.store.load();
  for (const b of unreadable) ctx.log.warn({ record: `${b.id}: ${b.reason}` }, 'skipping unreadable container record');
  for (const id of halfWritten) ctx.log.warn({ record: `${id}: status record missing` }, 'skipping unreadable container record');
  await deps.exits.start();
  await deps.host.makeDir(deps.dirs.sockets);
  const timeoutMs = deps.config.daemon.recovery_item_timeout_seconds * 1000;
  for (const c of loaded) {
    deps.images.retain(c.meta.imageId, c.id);
    for (const v of c.meta.imageVolumes) deps.images.retain(v.imageId, c.id);
    if (c.status.state === 'exited') continue;
    const { itemCtx, done } = itemContext(ctx, timeoutMs);
    try {
      const st = await deps.runtimeOf(c).state(itemCtx, c.id);
      if (st === undefined || st.status === 'stopped') {
        const code = await deps.exits.check(c.id);
        if (code === undefined) {
          c.status = { ...c.status, message: 'the container was gone when cricketd restarted; its exit code is unknown' };
          await recordExit(deps, c, 255);
        }
      } else if (st.status === 'running' && c.status.state === 'created') {
        c.status = { ...c.status, state: 'running', startedAt: String(BigInt(Date.now()) * 1_000_000n) };
        await deps.store.update(c);
      }
    } catch (err) {
      ctx.log.warn({ err, container: c.id }, 'cannot reconcile container; keeping its record');
    } finally {
      done();
    }
  }
  // A meta without its status is a create or a removal a crash cut between the two
  // record writes: the caller never got the container, or already had it removed.
  // Undo it like an unfinished create, records included.
  const undo = new Set(halfWritten);
  const keep = new Set([...loaded.map((c) => c.id), ...unreadable.map((b) => b.id).filter((id) => !undo.has(id))]);
  await releaseOrphans(ctx, deps, keep, undo, timeoutMs);
  ctx.log.info({ containers: loaded.length }, 'containers recovered');
}

/**
 * A CreateContainer that a crash interrupted leaves a bundle (maybe with a mounted
 * rootfs, a conmon and a runc container) or a writable layer, but no record: undo it
 * all, as the create's rollback would have.
 */
async function releaseOrphans(ctx: OpContext, deps: ContainersDeps, known: Set<string>, halfWritten: Set<string>, timeoutMs: number): Promise<void> {
  const ids = new Set<string>(halfWritten);
  for (const d of [deps.dirs.run, deps.dirs.layers, deps.dirs.sockets]) await deps.host.sweepDiscarded(d);
  for (const d of [deps.dirs.run, deps.dirs.layers]) {
    for (const n of deps.host.listDir(d)) if (isFullId(n) && !known.has(n)) ids.add(n);
  }
  for (const id of ids) {
    const { itemCtx, done } = itemContext(ctx, timeoutMs);
    const bundleDir = join(deps.dirs.run, id);
    try {
      deps.host.killConmon(bundleDir, id);
      for (const handler of Object.keys(deps.config.runtime.handlers)) await deps.runtime(handler).delete(itemCtx, id).catch(() => {});
      await deps.host.unmountOverlay(overlayPaths(bundleDir, join(deps.dirs.layers, id)).target, itemCtx.signal);
      await deps.host.unmountUnder(join(bundleDir, IMAGE_VOLUMES_DIR), itemCtx.signal);
      await deps.host.removeAll(bundleDir);
      await deps.host.removeAll(join(deps.dirs.sockets, id));
      await deps.host.removeLayerDirs(join(deps.dirs.layers, id));
      await deps.exits.forget(id);
      if (halfWritten.has(id)) await deps.store.removeRecords(id);
      ctx.log.info({ container: id }, 'removed what an unfinished CreateContainer left');
    } catch (err) {
      ctx.log.warn({ err, container: id }, 'cannot remove what an unfinished CreateContainer left');
    } finally {
      done();
    }
  }
}

/**
 * ctx with a signal that also aborts after ms (the per-item recovery timeout). Not
 * AbortSignal.any([..., AbortSignal.timeout(ms)]): Node 20 holds the sources of a
 * composite signal weakly, so after a GC the timeout is lost and never fires.
 */
function itemContext(ctx: OpContext, ms: number): { itemCtx: OpContext; done: () => void } {
  const ac = new AbortController();
  const onAbort = () => ac.abort(ctx.signal.reason);
  if (ctx.signal.aborted) onAbort();
  else ctx.signal.addEventListener('abort', onAbort, { once: true });
  const timer = setTimeout(() => ac.abort(new DOMException(`recovery item timed out after ${ms} ms`, 'TimeoutError')), ms);
  return {
    itemCtx: { ...ctx, signal: ac.signal },
    done: () => {
      clearTimeout(timer);
      ctx.signal.removeEventListener('abort', onAbort);
    },
  };
}
