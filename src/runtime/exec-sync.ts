import { spawn } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import type { OpContext } from '../core/context.js';
import { abortError, CricketError } from '../core/errors.js';
import { killProcessTree } from '../host/process-tree.js';
import { killSandboxProcess } from './handler.js';
import { sandboxExecUserArgs, type ExecUser } from './exec-runner.js';

/** Each of stdout and stderr is kept up to this many bytes; the rest is dropped. */
export const EXEC_SYNC_MAX_BYTES = 16 << 20;

export interface ExecSyncResult {
  stdout: Buffer;
  stderr: Buffer;
  exitCode: number;
}

/**
 * `runc exec` a command and collect its output. On timeout (or when the caller gives
 * up) the process inside the container is killed by pid and runc with everything
 * below it (killing runc alone would leave the process running), then the call fails
 * with DeadlineExceeded (or Canceled).
 */
export function execSync(
  ctx: OpContext,
  o: { runtimePath: string; runtimeRoot: string; runtimeArgs: readonly string[]; runtimeType?: 'oci' | 'sandbox'; user?: ExecUser; id: string; cmd: readonly string[]; timeoutMs: number; pidDir?: string },
): Promise<ExecSyncResult> {
  const pidFile = join(o.pidDir ?? tmpdir(), `exec-${randomBytes(8).toString('hex')}.pid`);
  return new Promise((resolve, reject) => {
    if (ctx.signal.aborted) return reject(abortError(ctx.signal, 'exec'));
    // gVisor: the process inside the sandbox is not below runsc on the host; its
    // sandbox pid is what a timeout kills (killSandboxProcess).
    const sandboxed = o.runtimeType === 'sandbox';
    const internalPidFile = `${pidFile}.internal`;
    const execFlags = sandboxed ? ['--internal-pid-file', internalPidFile, ...sandboxExecUserArgs(o.user)] : [];
    const child = spawn(o.runtimePath, ['--root', o.runtimeRoot, ...o.runtimeArgs, 'exec', '--pid-file', pidFile, ...execFlags, o.id, ...o.cmd], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outLen = 0;
    let errLen = 0;
    child.stdout.on('data', (b: Buffer) => {
      if (outLen < EXEC_SYNC_MAX_BYTES) out.push(b.subarray(0, EXEC_SYNC_MAX_BYTES - outLen));
      outLen += b.length;
    });
    child.stderr.on('data', (b: Buffer) => {
      if (errLen < EXEC_SYNC_MAX_BYTES) err.push(b.subarray(0, EXEC_SYNC_MAX_BYTES - errLen));
      errLen += b.length;
    });
    let failure: CricketError | undefined;
    let exited = false;
    child.once('exit', () => (exited = true));
    const killInside = async (why: CricketError) => {
      failure ??= why;
      const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
      if (exited || child.pid === undefined) return;
      if (sandboxed) await killSandboxProcess(o, internalPidFile);
      // Before runc has written the pid file the process may already run: runc, it and
      // its children are frozen and killed as one tree.
      await killProcessTree(Number.isInteger(pid) && pid > 1 ? [child.pid, pid] : [child.pid]);
    };
    const timer =
      o.timeoutMs > 0
        ? setTimeout(() => void killInside(new CricketError('DeadlineExceeded', `command timed out after ${o.timeoutMs / 1000} s and was killed`)), o.timeoutMs)
        : undefined;
    const onAbort = () => void killInside(abortError(ctx.signal, 'exec'));
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    child.once('error', (e) => {
      failure ??= new CricketError('FailedPrecondition', `cannot run ${o.runtimePath}: ${e.message}`);
    });
    child.once('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      ctx.signal.removeEventListener('abort', onAbort);
      void rm(pidFile, { force: true });
      if (sandboxed) void rm(internalPidFile, { force: true });
      if (failure) return reject(failure);
      resolve({ stdout: Buffer.concat(out), stderr: Buffer.concat(err), exitCode: code ?? (signal ? 128 : -1) });
    });
  });
}
