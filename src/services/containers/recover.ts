import { mkdir } from 'node:fs/promises';
import type { OpContext } from '../../core/context.js';
import type { ContainersDeps } from './containers-deps.js';
import { recordExit } from './lifecycle.js';

/**
 * After a restart: reload records, then reconcile each container with the host.
 * Exit files written while we were down are read by the watcher's first scan; a
 * container the runtime no longer knows (e.g. after a reboot) is marked exited with
 * an unknown code rather than reported as running.
 */
export async function recoverContainers(ctx: OpContext, deps: ContainersDeps): Promise<void> {
  const { loaded, bad } = await deps.store.load();
  for (const b of bad) ctx.log.warn({ record: b }, 'skipping unreadable container record');
  await deps.exits.start();
  await mkdir(deps.dirs.sockets, { recursive: true });
  const timeoutMs = deps.config.daemon.recovery_item_timeout_seconds * 1000;
  for (const c of loaded) {
    deps.images.retain(c.meta.imageId, c.id);
    if (c.status.state === 'exited') continue;
    const itemCtx = { ...ctx, signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(timeoutMs)]) };
    try {
      const st = await deps.runtime(c.meta.runtimeHandler).state(itemCtx, c.id);
      if (st === undefined || st.status === 'stopped') {
        const code = await deps.exits.check(c.id);
        if (code === undefined) {
          c.status = { ...c.status, message: 'the container was gone when cricketd restarted; its exit code is unknown' };
          await recordExit(deps, c, 255);
        }
      } else if (st.status === 'running' && c.status.state === 'created') {
        c.status = { ...c.status, state: 'running', startedAt: String(BigInt(Date.now()) * 1_000_000n) };
        await deps.store.persistStatus(c);
      }
    } catch (err) {
      ctx.log.warn({ err, container: c.id }, 'cannot reconcile container; keeping its record');
    }
  }
  ctx.log.info({ containers: loaded.length }, 'containers recovered');
}
