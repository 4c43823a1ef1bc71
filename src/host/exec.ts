import { spawn, type SpawnOptions } from 'node:child_process';
import { abortError, CricketError, ProcessError, type ErrorCode } from '../core/errors.js';

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
 */
export function run(file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const max = opts.maxOutputBytes ?? 4 << 20;
  const label = `${file.split('/').pop()} ${args.slice(0, 3).join(' ')}`.trim();
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
