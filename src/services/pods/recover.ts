import type { OpContext } from '../../core/context.js';
import { isMountPoint } from '../../host/netns.js';
import { isPodInit } from '../../host/pod-init.js';
import type { PodsDeps } from './pods-deps.js';
import type { Sandbox } from './sandbox-store.js';

/**
 * Reloads sandbox records. A pod stays READY only if what it runs on is still there:
 * its pinned namespaces (gone after a reboot, /run being tmpfs) and its init for a
 * shared PID namespace. Otherwise it is marked NOTREADY; its CNI cache still lets
 * Stop/Remove release the IP and host-side rules.
 */
export async function recoverSandboxes(ctx: OpContext, deps: PodsDeps): Promise<void> {
  const { loaded, problems } = await deps.store.load();
  for (const p of problems) ctx.log.warn({ problem: p }, 'unreadable pod sandbox record skipped');
  let ready = 0;
  for (const sb of loaded) {
    if (sb.status.state !== 'ready') continue;
    const why = brokenBecause(sb);
    if (why === undefined) {
      ready++;
      continue;
    }
    ctx.log.warn({ pod: sb.id, why }, 'pod sandbox no longer intact; marking it NOTREADY');
    sb.status = { ...sb.status, state: 'notready', initPid: null };
    deps.store.releasePorts(sb.id);
    await deps.store.persistStatus(sb).catch((err: unknown) => ctx.log.warn({ err, pod: sb.id }, 'cannot save pod record'));
  }
  ctx.log.info({ pods: loaded.length, ready }, 'pod sandboxes recovered');
}

function brokenBecause(sb: Sandbox): string | undefined {
  const m = sb.meta;
  for (const p of [m.netnsPath, m.ipcnsPath, m.utsnsPath]) if (p && !isMountPoint(p)) return `namespace ${p} is gone`;
  if (m.pidnsPath) {
    if (sb.status.initPid === null || !isPodInit(sb.status.initPid, m.pidnsPath)) return 'the pod init process is gone';
  }
  return undefined;
}
