import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { abortError, CricketError } from '../core/errors.js';
import { SYS_HELPER_SOURCE } from './sys-helper-source.js';

/**
 * The daemon's one channel to the mount and namespace syscalls (see sys-helper-source.ts
 * for the program and why). Started on first use; it exits after IDLE_MS without a
 * request so an idle node does not keep ~8 MB of python for nothing, and starts again
 * (~30 ms) on the next. A request that hangs past its timeout, or a helper that dies,
 * fails the requests in flight and the next request starts a fresh helper.
 *
 *   (none) ──request──► starting/serving ──IDLE_MS quiet──► (none)
 *                            │ died / timed out: pending requests fail
 *                            └──────────────────────────────► (none)
 */
export interface SysRequestMap {
  mount: { req: { source: string; target: string; fstype?: string; flags?: MountFlag[]; data?: string }; res: Record<string, never> };
  umount: { req: { target: string }; res: { was: boolean; lazy?: boolean } };
  pin: { req: { net?: string; ipc?: string; uts?: string; hostname?: string; sysctls?: [string, string][] }; res: Record<string, never> };
  netdev: { req: { netns: string }; res: { text: string } };
  execfifo: { req: { path: string; pid: number; timeoutMs: number }; res: { started: boolean } };
  userns: {
    req: { user: string; uidMappings: [number, number, number][]; gidMappings: [number, number, number][]; net?: string; ipc?: string; uts?: string; hostname?: string; sysctls?: [string, string][] };
    res: Record<string, never>;
  };
  idmap: { req: { source: string; target: string; userns: string }; res: Record<string, never> };
}
/** Ops that wait on a process: served on a thread of their own, timed by the helper itself. */
const CHILD_OPS: ReadonlySet<SysOp> = new Set(['execfifo']);
/** How long past a child op's own timeout the helper may take to answer before it is deemed stuck. */
const CHILD_OP_GRACE_MS = 10_000;
export type MountFlag = 'ro' | 'nosuid' | 'nodev' | 'noexec' | 'bind' | 'rec';
export type SysOp = keyof SysRequestMap;

/** The syscall failed: errno and what was asked, as the helper reports them. */
export class SysCallError extends CricketError {
  readonly errno: number;
  constructor(message: string, errno: number) {
    super('Internal', message, { details: { errno } });
    this.name = 'SysCallError';
    this.errno = errno;
  }
}

const IDLE_MS = 10_000;
const DEFAULT_TIMEOUT_MS = 30_000;

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
  op: string;
}

class SysHelper {
  #child: ChildProcessWithoutNullStreams | undefined;
  #pending = new Map<number, Pending>();
  #nextId = 1;
  #idle: NodeJS.Timeout | undefined;
  #stderr = '';

  request<O extends SysOp>(op: O, req: SysRequestMap[O]['req'], opts: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<SysRequestMap[O]['res']> {
    if (opts.signal?.aborted) return Promise.reject(abortError(opts.signal, op));
    const child = this.#ensure();
    const id = this.#nextId++;
    if (this.#idle) {
      clearTimeout(this.#idle);
      this.#idle = undefined;
    }
    const childOp = CHILD_OPS.has(op);
    return new Promise((resolve, reject) => {
      // A child op carries its own timeout to the helper, which gives up at it; the helper
      // itself is only deemed stuck well past that.
      const ownTimeout = childOp ? (req as { timeoutMs?: number }).timeoutMs : undefined;
      const timeoutMs = childOp ? (ownTimeout ?? DEFAULT_TIMEOUT_MS * 10) + CHILD_OP_GRACE_MS : (opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
      // A syscall that does not return in time: nothing else can be served behind it,
      // so the helper goes and everything in flight fails with it.
      const timer = setTimeout(() => this.#fail(new CricketError('DeadlineExceeded', `${op}: no answer from the mount helper within ${timeoutMs} ms`)), timeoutMs);
      // An abort does not stop a syscall or a wait under way; the caller just stops waiting.
      const onAbort = () => {
        const p = this.#pending.get(id);
        if (!p) return;
        this.#settle(id);
        p.reject(abortError(opts.signal!, op));
      };
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      this.#pending.set(id, {
        op,
        timer,
        resolve: (v) => {
          opts.signal?.removeEventListener('abort', onAbort);
          resolve(v as SysRequestMap[O]['res']);
        },
        reject: (e) => {
          opts.signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
      });
      child.stdin.write(`${JSON.stringify({ ...req, id, op })}\n`);
    });
  }

  #ensure(): ChildProcessWithoutNullStreams {
    if (this.#child) return this.#child;
    const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
    const child = spawn(python, ['-c', SYS_HELPER_SOURCE], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.#child = child;
    this.#stderr = '';
    child.stdin.on('error', () => {}); // a dead helper is seen at 'exit'
    child.stderr.on('data', (b: Buffer) => {
      this.#stderr = (this.#stderr + b.toString('utf8')).slice(-2000);
    });
    createInterface({ input: child.stdout }).on('line', (line) => this.#onLine(line));
    child.once('error', (err) => this.#gone(child, new CricketError('FailedPrecondition', `cannot run ${python} for the mount helper: ${err.message}`)));
    child.once('exit', (code, sig) =>
      this.#gone(child, new CricketError('Internal', `the mount helper ended (${sig ?? `exit code ${code}`})${this.#stderr ? `: ${this.#stderr.trim()}` : ''}`)),
    );
    // The helper never keeps the daemon alive on its own.
    child.unref();
    (child.stdin as unknown as { unref?: () => void }).unref?.();
    (child.stdout as unknown as { unref?: () => void }).unref?.();
    (child.stderr as unknown as { unref?: () => void }).unref?.();
    return child;
  }

  #onLine(line: string): void {
    let msg: { id: number; ok: boolean; errno?: number; error?: string };
    try {
      msg = JSON.parse(line) as typeof msg;
    } catch {
      return;
    }
    const p = this.#pending.get(msg.id);
    if (!p) return;
    this.#settle(msg.id);
    if (msg.ok) {
      const { id: _id, ok: _ok, ...rest } = msg as unknown as Record<string, unknown>;
      p.resolve(rest);
    } else {
      p.reject(new SysCallError(msg.error ?? `${p.op} failed`, msg.errno ?? 0));
    }
  }

  #settle(id: number): void {
    const p = this.#pending.get(id);
    if (!p) return;
    clearTimeout(p.timer);
    this.#pending.delete(id);
    if (this.#pending.size === 0 && this.#child && !this.#idle) {
      const child = this.#child;
      this.#idle = setTimeout(() => {
        this.#idle = undefined;
        if (this.#child === child && this.#pending.size === 0) {
          this.#child = undefined;
          child.stdin.end(); // the helper's loop ends at EOF
        }
      }, IDLE_MS);
      this.#idle.unref();
    }
  }

  #fail(err: Error): void {
    const child = this.#child;
    if (child) {
      this.#child = undefined;
      child.kill('SIGKILL');
    }
    this.#rejectAll(err);
  }

  #gone(child: ChildProcessWithoutNullStreams, err: Error): void {
    if (this.#child !== child) return; // already replaced (idle exit or a timeout)
    this.#child = undefined;
    this.#rejectAll(err);
  }

  #rejectAll(err: Error): void {
    for (const [id, p] of [...this.#pending]) {
      this.#settle(id);
      p.reject(err);
    }
    if (this.#idle) {
      clearTimeout(this.#idle);
      this.#idle = undefined;
    }
  }

  /** The helper's pid while one runs (for tests and diagnostics). */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Ends the helper now (daemon shutdown); a later request starts another. */
  stop(): void {
    const child = this.#child;
    this.#child = undefined;
    if (this.#idle) clearTimeout(this.#idle);
    this.#idle = undefined;
    child?.stdin.end();
  }
}

/** The daemon's one helper. */
export const sysHelper = new SysHelper();
