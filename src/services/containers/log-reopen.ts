import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { failedPrecondition, internal, notFound } from '../../core/errors.js';
import type { UnaryHandler } from '../../core/rpc.js';
import { conmonFiles } from '../../runtime/conmon.js';
import type { ContainersDeps } from './containers-deps.js';

// conmon's control fifo takes "<type> <a> <b>\n"; type 2 asks it to reopen its log files.
const REOPEN_LOGS = '2 0 0\n';
const REOPEN_WAIT_MS = 5000;

/** After kubelet rotates (renames) the log file, conmon reopens the path, creating a fresh file. */
export function makeReopenContainerLog(deps: ContainersDeps): UnaryHandler<'ReopenContainerLog'> {
  return async (ctx, req) => {
    const c = deps.store.resolve(req.containerId);
    if (!c) throw notFound(`container "${req.containerId}" not found`);
    if (c.status.state !== 'running') throw failedPrecondition(`container ${c.id} is not running; only a running container's log can be reopened`);
    let fh;
    try {
      // Non-blocking: if conmon is gone there is no reader, and we fail instead of hanging.
      fh = await open(conmonFiles(c.meta.bundleDir).ctlFifo, constants.O_WRONLY | constants.O_NONBLOCK);
    } catch (err) {
      throw failedPrecondition(`container ${c.id}: its monitor does not answer (${(err as NodeJS.ErrnoException).code ?? err})`);
    }
    try {
      await fh.write(REOPEN_LOGS);
    } finally {
      await fh.close();
    }
    const path = c.meta.logPath || c.meta.conmonLogPath;
    const deadline = Date.now() + REOPEN_WAIT_MS;
    while (!existsSync(path)) {
      if (Date.now() > deadline || ctx.signal.aborted) throw internal(`container ${c.id}: conmon did not reopen ${path}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    ctx.log.info({ container: c.id }, 'container log reopened');
    return {};
  };
}
