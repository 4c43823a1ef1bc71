import type { OpContext } from '../core/context.js';
import { CricketError, wrap } from '../core/errors.js';
import { closeSync, openSync, readSync } from 'node:fs';
import { basename, join } from 'node:path';
import { run } from '../host/exec.js';
import { SysCallError, sysHelper } from '../host/sys-helper.js';

export interface RuncState {
  status: 'creating' | 'created' | 'running' | 'paused' | 'stopped' | string;
  pid: number;
}

const RUNC_TIMEOUT_MS = 30_000;

const runcItself = new Map<string, boolean>();
/** A binary named runc, not a script standing in for it; asked once per path. */
function isRuncItself(path: string): boolean {
  let known = runcItself.get(path);
  if (known === undefined) {
    known = basename(path) === 'runc' && !startsWithShebang(path);
    runcItself.set(path, known);
  }
  return known;
}

function startsWithShebang(path: string): boolean {
  try {
    const fd = openSync(path, 'r');
    try {
      const head = Buffer.alloc(2);
      readSync(fd, head, 0, 2, 0);
      return head.toString('latin1') === '#!';
    } finally {
      closeSync(fd);
    }
  } catch {
    return true; // unreadable: leave it to the runtime's own start, which says why
  }
}

/**
 * One OCI runtime binary (runc or a compatible one) with its state root. Every call
 * carries the caller's AbortSignal and a timeout so a wedged runtime cannot hang an RPC.
 */
export class OciRuntime {
  readonly path: string;
  readonly root: string;
  /** Global flags after --root, before the subcommand (a handler's runtime_args). */
  readonly args: readonly string[];

  constructor(path: string, root: string, args: readonly string[] = []) {
    this.path = path;
    this.root = root;
    this.args = args;
  }

  #args(...rest: string[]): string[] {
    return ['--root', this.root, ...this.args, ...rest];
  }

  /** undefined when the runtime does not know the container. */
  async state(ctx: OpContext, id: string): Promise<RuncState | undefined> {
    const r = await run(this.path, this.#args('state', id), { signal: ctx.signal, timeoutMs: RUNC_TIMEOUT_MS, allowFailure: true });
    if (r.exitCode !== 0) {
      if (/does not exist|not found|container .* is not exist/i.test(r.stderr)) return undefined;
      throw new CricketError('Internal', `runc state ${id}: ${r.stderr.trim().slice(-500)}`);
    }
    const s = JSON.parse(r.stdout) as { status: string; pid: number };
    return { status: s.status, pid: s.pid };
  }

  /**
   * Starts a created container. For runc itself, with the init's pid known, the daemon
   * does what `runc start` does (open the exec fifo in runc's state dir, read, remove it;
   * see the helper's execfifo op) and saves a runc process: 10–14 ms of every
   * StartContainer here, nearly all of it that Go binary starting. Any other runtime, a
   * script in front of runc (a wrapper is there to do something on each call), or no
   * fifo where runc keeps it, goes through the runtime's own start.
   */
  async start(ctx: OpContext, id: string, pid?: number): Promise<void> {
    if (pid !== undefined && pid > 0 && isRuncItself(this.path)) {
      try {
        const r = await sysHelper.request('execfifo', { path: join(this.root, id, 'exec.fifo'), pid, timeoutMs: RUNC_TIMEOUT_MS }, { signal: ctx.signal });
        if (r.started) return;
      } catch (err) {
        if (err instanceof SysCallError) throw new CricketError('Internal', `runc start ${id}: ${err.message}`);
        throw err;
      }
    }
    await run(this.path, this.#args('start', id), { signal: ctx.signal, timeoutMs: RUNC_TIMEOUT_MS });
  }

  /** Sends a signal; a container that is already gone is not an error. */
  async kill(ctx: OpContext, id: string, signal: string, all = false): Promise<void> {
    const args = all ? this.#args('kill', '--all', id, signal) : this.#args('kill', id, signal);
    const r = await run(this.path, args, { signal: ctx.signal, timeoutMs: RUNC_TIMEOUT_MS, allowFailure: true });
    if (r.exitCode !== 0 && !/not running|does not exist|process already finished|container not running/i.test(r.stderr)) {
      throw new CricketError('Internal', `runc kill ${id} ${signal}: ${r.stderr.trim().slice(-500)}`);
    }
  }

  async delete(ctx: OpContext, id: string): Promise<void> {
    const r = await run(this.path, this.#args('delete', '--force', id), { signal: ctx.signal, timeoutMs: RUNC_TIMEOUT_MS, allowFailure: true });
    if (r.exitCode !== 0 && !/does not exist|not found/i.test(r.stderr)) {
      throw new CricketError('Internal', `runc delete ${id}: ${r.stderr.trim().slice(-500)}`);
    }
  }

  /** Applies OCI linux.resources to a live container (`runc update --resources -`). */
  async update(ctx: OpContext, id: string, resources: object): Promise<void> {
    try {
      await run(this.path, this.#args('update', '--resources', '-', id), {
        signal: ctx.signal,
        timeoutMs: RUNC_TIMEOUT_MS,
        input: JSON.stringify(resources),
      });
    } catch (err) {
      throw wrap(err, `update resources of container ${id}`);
    }
  }
}
