import { failedPrecondition, internal, notFound } from '../../core/errors.js';
import type { UnaryHandler } from '../../core/rpc.js';
import type { ContainersDeps } from './containers-deps.js';

const REOPEN_WAIT_MS = 5000;

/** After kubelet rotates (renames) the log file, conmon reopens the path, creating a fresh file. */
export function makeReopenContainerLog(deps: ContainersDeps): UnaryHandler<'ReopenContainerLog'> {
  return async (ctx, req) => {
    const c = deps.store.resolve(req.containerId);
    if (!c) throw notFound(`container "${req.containerId}" not found`);
    if (c.status.state !== 'running') throw failedPrecondition(`container ${c.id} is not running; only a running container's log can be reopened`);
    try {
      await deps.host.reopenConmonLogs(c.meta.bundleDir);
    } catch (err) {
      throw failedPrecondition(`container ${c.id}: its monitor does not answer (${(err as NodeJS.ErrnoException).code ?? err})`);
    }
    const path = c.meta.logPath || c.meta.conmonLogPath;
    const deadline = Date.now() + REOPEN_WAIT_MS;
    while (!deps.host.exists(path)) {
      if (Date.now() > deadline || ctx.signal.aborted) throw internal(`container ${c.id}: conmon did not reopen ${path}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    ctx.log.info({ container: c.id }, 'container log reopened');
    return {};
  };
}
