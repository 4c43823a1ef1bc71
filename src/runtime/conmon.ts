import { spawn } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import type { OpContext } from '../core/context.js';
import { abortError, CricketError } from '../core/errors.js';

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
 */
export function createWithConmon(ctx: OpContext, o: ConmonCreate): Promise<number> {
  return new Promise((resolve, reject) => {
    if (ctx.signal.aborted) return reject(abortError(ctx.signal, 'create container'));
    const child = spawn(o.conmonPath, conmonArgs(o), {
      stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'],
      env: { _OCI_SYNCPIPE: '3', _OCI_STARTPIPE: '4', PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin' },
      // conmon also drops an "oom" file in its working directory.
      cwd: o.bundleDir,
      detached: true,
    });
    const sync = child.stdio[3] as Readable;
    const start = child.stdio[4] as Writable;
    let stderr = '';
    let buf = '';
    let settled = false;
    child.stdout!.on('data', () => {});
    child.stderr!.on('data', (b: Buffer) => {
      if (stderr.length < 8192) stderr += b.toString();
    });
    const finish = (err: Error | undefined, pid?: number) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      ctx.signal.removeEventListener('abort', onAbort);
      // conmon keeps its end of the pipes for the container's life; drop ours so the
      // daemon does not hold them open.
      sync.destroy();
      start.destroy();
      child.stdout!.destroy();
      child.stderr!.destroy();
      child.unref();
      if (err) reject(err);
      else resolve(pid!);
    };
    const timer = setTimeout(() => finish(new CricketError('DeadlineExceeded', `conmon did not report a pid within ${o.timeoutMs} ms`)), o.timeoutMs);
    const onAbort = () => finish(abortError(ctx.signal, 'create container'));
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    child.once('error', (err) => finish(new CricketError('FailedPrecondition', `cannot run conmon ${o.conmonPath}: ${err.message}`, { cause: err })));
    child.once('exit', (code) => {
      // The first conmon exits once it has forked; only a non-zero exit before a pid is a failure.
      if (code !== 0 && !settled) {
        setTimeout(() => finish(new CricketError('Internal', `conmon exited with ${code}: ${stderr.trim().slice(-1000)}`)), 50);
      }
    });
    start.on('error', () => {});
    sync.on('error', () => {});
    start.write('0');
    sync.on('data', (b: Buffer) => {
      buf += b.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        let msg: { data?: number; pid?: number; message?: string };
        try {
          msg = JSON.parse(line) as typeof msg;
        } catch {
          continue;
        }
        const pid = msg.data ?? msg.pid ?? -1;
        if (pid > 0) return finish(undefined, pid);
        return finish(new CricketError('Internal', `runtime failed to create the container: ${(msg.message ?? stderr).trim().slice(-1500)}`));
      }
    });
    // Give stderr a moment to drain so the error says why.
    sync.on('end', () =>
      setTimeout(() => finish(new CricketError('Internal', `conmon closed the sync pipe without a pid: ${stderr.trim().slice(-1000)}`)), 100),
    );
  });
}
