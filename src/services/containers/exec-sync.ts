import { failedPrecondition, invalidArgument, notFound } from '../../core/errors.js';
import type { UnaryHandler } from '../../core/rpc.js';
import type { ContainersDeps } from './containers-deps.js';

export function makeExecSync(deps: ContainersDeps): UnaryHandler<'ExecSync'> {
  return async (ctx, req) => {
    const c = deps.store.resolve(req.containerId);
    if (!c) throw notFound(`container "${req.containerId}" not found`);
    if (req.cmd.length === 0) throw invalidArgument('ExecSync needs a command');
    if (req.timeout < 0n || req.timeout > 86_400n) throw invalidArgument(`timeout ${req.timeout} s is outside 0..86400`);
    if (c.status.state !== 'running') throw failedPrecondition(`container ${c.id} is ${c.status.state}, not running; cannot exec in it`);
    const r = await deps.host.execSync(ctx, {
      runtimePath: c.meta.runtimePath,
      runtimeRoot: c.meta.runtimeRoot,
      runtimeArgs: c.meta.runtimeArgs,
      runtimeType: c.meta.runtimeType,
      user: c.meta.user,
      id: c.id,
      cmd: req.cmd,
      timeoutMs: Number(req.timeout) * 1000,
      pidDir: c.meta.bundleDir,
    });
    return { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode };
  };
}
