import type { OpContext } from '../core/context.js';
import { abortError, CricketError } from '../core/errors.js';
import { SysCallError, sysHelper } from '../host/sys-helper.js';

export interface ConmonCreate {
  conmonPath: string;
  runtimePath: string;
  runtimeRoot: string;
  /** Global runtime flags after --root (a handler's runtime_args). */
  runtimeArgs: readonly string[];
  id: string;
  name: string;
  bundleDir: string;
  logPath: string;
  exitDir: string;
  socketDir: string;
  stdin: boolean;
  stdinOnce: boolean;
  tty: boolean;
  logLevel: string;
  timeoutMs: number;
  /**
   * runc's own log (--log): its warnings would otherwise go to its stderr, which under
   * conmon is the container's (e.g. "skipping device /dev/char/10:200 for systemd" on a
   * host without /dev/net/tun in every container's log). runc still prints a fatal
   * error to stderr, which conmon reports for a failed create.
   */
  runtimeLogPath?: string;
}

/** Files conmon keeps for a container, all inside its bundle directory. */
export function conmonFiles(bundleDir: string) {
  return {
    containerPidFile: `${bundleDir}/pidfile`,
    conmonPidFile: `${bundleDir}/conmon.pid`,
    ctlFifo: `${bundleDir}/ctl`,
    oomFile: `${bundleDir}/oom`,
  };
}

/** The flags CRI-O gives conmon (API version 1), with the persist dir being the bundle. */
export function conmonArgs(o: ConmonCreate): string[] {
  const f = conmonFiles(o.bundleDir);
  const args = [
    '--api-version', '1',
    '-c', o.id,
    '-u', o.id,
    '-n', o.name,
    '-r', o.runtimePath,
    '-b', o.bundleDir,
    '-p', f.containerPidFile,
    '-P', f.conmonPidFile,
    '-l', `k8s-file:${o.logPath}`,
    '--exit-dir', o.exitDir,
    '--socket-dir-path', o.socketDir,
    '--persist-dir', o.bundleDir,
    '--log-level', o.logLevel,
    '--runtime-arg', `--root=${o.runtimeRoot}`,
  ];
  for (const a of o.runtimeArgs) args.push('--runtime-arg', a);
  if (o.runtimeLogPath) args.push('--runtime-arg', `--log=${o.runtimeLogPath}`);
  if (o.tty) args.push('-t');
  if (o.stdin) args.push('-i');
  if (o.stdin && !o.stdinOnce) args.push('--leave-stdin-open');
  return args;
}

/**
 * Starts conmon, which double-forks and runs `runc create`; resolves with the
 * container's pid once conmon reports it on the sync pipe. conmon first waits for a
 * byte on the start pipe (a hook for moving it into a cgroup before it forks).
 * The monitor outlives the daemon: it is reaped by our subreaper (catatonit).
 *
 * The sys helper starts it (see host/sys-helper-source.ts, op conmon): it vforks where
 * a spawn from Node forks the whole daemon, 5–12 ms of every CreateContainer here.
 */
export async function createWithConmon(ctx: OpContext, o: ConmonCreate): Promise<number> {
  if (ctx.signal.aborted) throw abortError(ctx.signal, 'create container');
  let res;
  try {
    res = await sysHelper.request(
      'conmon',
      {
        file: o.conmonPath,
        args: conmonArgs(o),
        env: { PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin' },
        // conmon also drops an "oom" file in its working directory.
        cwd: o.bundleDir,
        timeoutMs: o.timeoutMs,
      },
      { signal: ctx.signal },
    );
  } catch (err) {
    if (err instanceof SysCallError) throw new CricketError('FailedPrecondition', `cannot run conmon ${o.conmonPath}: ${err.message}`, { cause: err });
    if (ctx.signal.aborted) throw abortError(ctx.signal, 'create container');
    throw err;
  }
  if (res.pid > 0) return res.pid;
  if (res.timedOut) throw new CricketError('DeadlineExceeded', `conmon did not report a pid within ${o.timeoutMs} ms`);
  if (res.closed) throw new CricketError('Internal', `conmon closed the sync pipe without a pid: ${res.stderr.trim().slice(-1000)}`);
  throw new CricketError('Internal', `runtime failed to create the container: ${(res.message || res.stderr).trim().slice(-1500)}`);
}
