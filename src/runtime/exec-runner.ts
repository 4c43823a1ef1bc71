import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import type { Logger } from 'pino';
import type { RemoteCommandIO, SessionResult, TerminalSize } from '../core/remote-io.js';
import { killProcessTree } from '../host/process-tree.js';
import { killSandboxProcess } from './handler.js';
import { pythonPath, TTY_HELPER_SOURCE } from './tty-helper.js';

const FIRST_SIZE_WAIT_MS = 1000;
const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGPIPE: 13, SIGTERM: 15 };

/** The user an exec'd process runs as. */
export interface ExecUser {
  readonly uid: number;
  readonly gid: number;
  readonly additionalGids: readonly number[];
}

/** `runsc exec`'s flags for the container's user (sorted groups, as the spec has them). */
export function sandboxExecUserArgs(user: ExecUser | undefined): string[] {
  if (!user) return [];
  const out = ['--user', `${user.uid}:${user.gid}`];
  for (const g of [...user.additionalGids].sort((a, b) => a - b)) out.push('--additional-gids', String(g));
  return out;
}

/** A container as `runc exec` addresses it: its id, the runtime binary and its --root. */
export interface ExecTarget {
  readonly id: string;
  readonly runtimePath: string;
  readonly runtimeRoot: string;
  /** Global flags after --root (a handler's runtime_args). */
  readonly runtimeArgs: readonly string[];
  /**
   * 'sandbox' (runsc): `runsc exec` has no --tty flag; it gives the process a terminal
   * when its own stdio is one (the TTY helper's pty), so the flag is left out.
   */
  readonly runtimeType: 'oci' | 'sandbox';
  /** The container's user: `runsc exec` runs as root unless told (runc exec takes the spec's). */
  readonly user?: ExecUser;
  /**
   * The container's bundle dir: the exec's pid file goes there, so one a daemon killed
   * mid-session could not delete goes with the container instead of staying in /tmp.
   */
  readonly bundleDir: string;
}

/**
 * Runs `runc exec` for one session and reports how it ended. Without a TTY runc's own
 * stdio are the session's pipes; with one, the TTY helper stands between (see
 * tty-helper.ts).
 *
 * A client that goes away takes its process with it, whenever it goes: before the
 * spawn nothing is started; after it, the helper, runc, the process and the process's
 * children are frozen and killed as one tree (host/process-tree.ts). Killing runc
 * alone would orphan the process in the window between its start and runc writing
 * --pid-file; the pid file still names it should runc have died on its own first.
 */
export async function runExec(
  log: Logger,
  target: ExecTarget,
  cmd: readonly string[],
  io: RemoteCommandIO,
): Promise<SessionResult> {
  const pidFile = join(target.bundleDir, `exec-${randomBytes(8).toString('hex')}.pid`);
  const sandboxed = target.runtimeType === 'sandbox';
  const internalPidFile = `${pidFile}.internal`;
  const runcArgs = ['--root', target.runtimeRoot, ...target.runtimeArgs, 'exec', '--pid-file', pidFile];
  // gVisor: the process lives inside the sandbox, not below runsc; its sandbox pid is
  // what a client that goes away kills (killSandboxProcess).
  if (sandboxed) runcArgs.push('--internal-pid-file', internalPidFile, ...sandboxExecUserArgs(target.user));
  if (io.tty && target.runtimeType !== 'sandbox') runcArgs.push('--tty');
  runcArgs.push(target.id, ...cmd);
  let size = '-';
  if (io.tty) {
    // Clients send the terminal size right after connecting; a process that asks for
    // it at once (a shell, stty) should see it, so wait a moment for the first one.
    const first = await new Promise<TerminalSize | undefined>((resolve) => {
      const done = (s: TerminalSize | undefined) => {
        clearTimeout(timer);
        io.signal.removeEventListener('abort', gone);
        resolve(s);
      };
      const gone = () => done(undefined);
      const timer = setTimeout(gone, FIRST_SIZE_WAIT_MS);
      io.signal.addEventListener('abort', gone, { once: true });
      io.onResize(done);
    });
    if (first) size = `${first.width} ${first.height}`;
  }
  // The client left before anything ran (an abort listener added now would never fire).
  if (io.signal.aborted) return { error: 'the client went away before the process was started' };
  const file = io.tty ? pythonPath() : target.runtimePath;
  const args = io.tty ? ['-c', TTY_HELPER_SOURCE, size, target.runtimePath, ...runcArgs] : runcArgs;
  const child = spawn(file, args, {
    // stderr is always piped: runc's own failures ("container not running") land there.
    stdio: io.tty ? ['pipe', 'pipe', 'pipe', 'pipe'] : [io.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
  });
  let exited = false;
  child.once('exit', () => (exited = true));
  const killAll = async () => {
    if (exited || child.pid === undefined) return;
    if (sandboxed) await killSandboxProcess(target, internalPidFile);
    let inside = 0;
    try {
      inside = Number(readFileSync(pidFile, 'utf8').trim());
    } catch {
      // not written yet: the process, if it runs, is still below runc
    }
    // Frozen and killed together: the process first would orphan its children.
    await killProcessTree(Number.isInteger(inside) && inside > 1 ? [child.pid, inside] : [child.pid]);
  };
  const onAbort = () => {
    log.debug({ container: target.id }, 'exec client went away; killing the process');
    void killAll();
  };
  // Same tick as the spawn: no abort can slip in between.
  io.signal.addEventListener('abort', onAbort, { once: true });

  if (io.tty) {
    const ctl = child.stdio[3] as Writable;
    ctl.on('error', () => {});
    io.onResize((s) => ctl.write(`${s.width} ${s.height}\n`));
  }
  if (io.stdin && child.stdin) {
    child.stdin.on('error', () => {}); // the process may exit without reading
    io.stdin.on('error', () => {});
    io.stdin.pipe(child.stdin);
  } else if (child.stdin) {
    // A TTY session without stdin: the pipe stays open and silent, so the terminal
    // never reads EOF (^D would end a shell that merely nobody types into).
    child.stdin.on('error', () => {});
  }
  // end:false — finish() ends the client's streams once the status is known.
  if (io.stdout) child.stdout!.pipe(io.stdout, { end: false });
  else child.stdout!.resume();
  let stderrTail = '';
  child.stderr!.on('data', (b: Buffer) => {
    stderrTail = (stderrTail + b.toString()).slice(-4096);
  });
  if (io.stderr) child.stderr!.pipe(io.stderr, { end: false });

  try {
    const result = await new Promise<SessionResult>((resolve) => {
      child.once('error', (err) => resolve({ error: `cannot run ${file}: ${err.message}` }));
      child.once('close', (code, signal) => {
        if (signal) resolve({ exitCode: 128 + (SIGNALS[signal] ?? 9) });
        else if (code === 0) resolve({ ok: true });
        else resolve({ exitCode: code ?? 1 });
      });
    });
    if ('exitCode' in result && !io.stderr && stderrTail.includes('exec failed')) {
      // runc could not start the command: say why rather than only "exit 1".
      return { error: stderrTail.trim().split('\n').slice(-1)[0]! };
    }
    return result;
  } finally {
    io.signal.removeEventListener('abort', onAbort);
    rmSync(pidFile, { force: true });
    if (sandboxed) rmSync(internalPidFile, { force: true });
  }
}
