import { spawn, type SpawnOptions } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import { abortError, CricketError, ProcessError, type ErrorCode } from '../core/errors.js';
import { SysCallError, sysHelper } from './sys-helper.js';

export interface RunOptions {
  signal?: AbortSignal;
  /** Kill the process after this long (SIGKILL). */
  timeoutMs?: number;
  input?: string | Uint8Array;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Bytes kept of each of stdout and stderr; the rest is dropped (and flagged). */
  maxOutputBytes?: number;
  /** Error code when the process exits non-zero; Internal by default. */
  failCode?: ErrorCode;
  /** Return a non-zero exit as a result instead of throwing. */
  allowFailure?: boolean;
  detached?: boolean;
}

export interface RunResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  stdoutBytes: Buffer;
  truncated: boolean;
}

/**
 * Runs a program to completion: bounded output, a timeout, and the caller's
 * AbortSignal all end it. A non-zero exit throws ProcessError with the exit code and
 * the tail of stderr, unless allowFailure is set.
 *
 * The program is started by the sys helper (sys-helper.ts), which vforks: a spawn from
 * Node forks the whole daemon, 5–12 ms each here, and runc and the CNI plugins run on
 * every pod start and stop. A detached program (a session of its own that may outlive
 * the call) is spawned from Node.
 */
export async function run(file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  if (opts.detached) return runFromNode(file, args, opts);
  const max = opts.maxOutputBytes ?? 4 << 20;
  const label = labelOf(file, args);
  if (opts.signal?.aborted) throw abortError(opts.signal, label);
  let res;
  try {
    res = await sysHelper.request(
      'run',
      {
        file,
        args,
        env: envOf(opts.env ?? process.env),
        ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
        ...(opts.input !== undefined ? { input: Buffer.from(opts.input).toString('base64') } : {}),
        ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
        maxOutputBytes: max,
      },
      opts.signal ? { signal: opts.signal } : {},
    );
  } catch (err) {
    if (err instanceof SysCallError) {
      const code = err.errno === ENOENT ? 'FailedPrecondition' : 'Internal';
      throw new CricketError(code, `cannot run ${file}: ${err.message}`, { cause: err });
    }
    throw err;
  }
  if (res.timedOut) throw new CricketError('DeadlineExceeded', `${label}: timed out after ${opts.timeoutMs} ms`);
  const stdoutBytes = Buffer.from(res.stdout, 'base64');
  const result: RunResult = {
    exitCode: res.exitCode,
    signal: res.signal === null ? null : signalName(res.signal),
    stdout: stdoutBytes.toString('utf8'),
    stderr: Buffer.from(res.stderr, 'base64').toString('utf8'),
    stdoutBytes,
    truncated: res.truncated,
  };
  if ((result.exitCode !== 0 || result.signal) && !opts.allowFailure) throw new ProcessError(label, result, opts.failCode);
  return result;
}

const ENOENT = 2;

function labelOf(file: string, args: readonly string[]): string {
  return `${file.split('/').pop()} ${args.slice(0, 3).join(' ')}`.trim();
}

/** process.env's shape, without the unset keys JSON would drop anyway. */
function envOf(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v;
  return out;
}

const SIGNAL_NAMES = new Map<number, NodeJS.Signals>(Object.entries(osConstants.signals).map(([name, n]) => [n, name as NodeJS.Signals]));
function signalName(n: number): NodeJS.Signals {
  return SIGNAL_NAMES.get(n) ?? 'SIGKILL';
}

/** The same contract, spawned from Node: for a detached program. */
function runFromNode(file: string, args: readonly string[], opts: RunOptions): Promise<RunResult> {
  const max = opts.maxOutputBytes ?? 4 << 20;
  const label = labelOf(file, args);
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) return reject(abortError(opts.signal, label));
    const spawnOpts: SpawnOptions = {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      detached: opts.detached ?? false,
    };
    let child;
    try {
      child = spawn(file, args, spawnOpts);
    } catch (err) {
      return reject(new CricketError('Internal', `cannot run ${file}: ${(err as Error).message}`, { cause: err }));
    }
    const out: Buffer[] = [];
    const errb: Buffer[] = [];
    let outLen = 0;
    let errLen = 0;
    let truncated = false;
    child.stdout!.on('data', (b: Buffer) => {
      if (outLen < max) out.push(b.subarray(0, max - outLen));
      else truncated = true;
      outLen += b.length;
    });
    child.stderr!.on('data', (b: Buffer) => {
      if (errLen < max) errb.push(b.subarray(0, max - errLen));
      else truncated = true;
      errLen += b.length;
    });
    if (opts.input !== undefined) {
      child.stdin!.on('error', () => {}); // the child may exit without reading
      child.stdin!.end(opts.input);
    }
    let killedFor: CricketError | undefined;
    const kill = (why: CricketError) => {
      killedFor ??= why;
      child.kill('SIGKILL');
    };
    const timer =
      opts.timeoutMs !== undefined
        ? setTimeout(() => kill(new CricketError('DeadlineExceeded', `${label}: timed out after ${opts.timeoutMs} ms`)), opts.timeoutMs)
        : undefined;
    const onAbort = () => kill(abortError(opts.signal!, label));
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    child.once('error', (err) => {
      if (timer) clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      const code = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'FailedPrecondition' : 'Internal';
      reject(new CricketError(code, `cannot run ${file}: ${err.message}`, { cause: err }));
    });
    child.once('close', (exitCode, signal) => {
      if (timer) clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      const stdoutBytes = Buffer.concat(out);
      const result: RunResult = {
        exitCode,
        signal,
        stdout: stdoutBytes.toString('utf8'),
        stderr: Buffer.concat(errb).toString('utf8'),
        stdoutBytes,
        truncated,
      };
      if (killedFor) return reject(killedFor);
      if ((exitCode !== 0 || signal) && !opts.allowFailure) {
        return reject(new ProcessError(label, result, opts.failCode));
      }
      resolve(result);
    });
  });
}
