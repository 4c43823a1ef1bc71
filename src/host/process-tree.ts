import { readdirSync, readFileSync } from 'node:fs';

/**
 * Ends a process and everything below it, e.g. a `runc exec` whose client went away.
 * Killing the top alone is not enough: `runc exec` makes the command its own child
 * (runc init clones it with CLONE_PARENT) and writes --pid-file only after it runs,
 * so in between a killed runc orphans a process nobody knows the pid of; and a
 * command's own children outlive it.
 *
 * Killing top-down races with forks (a child made after we listed its parent escapes
 * to a subreaper) and with reaping (a killed parent's children are reparented out of
 * the tree). So the whole tree is frozen first: SIGSTOP the top, list its children,
 * SIGSTOP them, and so on until a pass finds nobody new and everybody stopped — a
 * stopped process can neither fork nor reap — then SIGKILL them all.
 *
 * Several tops may be given (a process that may or may not still be below another);
 * a top killed first would let its children escape. Returns the pids it killed.
 */
export async function killProcessTree(tops: readonly number[], opts: { settleMs?: number } = {}): Promise<number[]> {
  const tree = new Set<number>(tops.filter((p) => p > 1));
  for (const p of tree) signal(p, 'SIGSTOP');
  // Stopping is asynchronous (delivered when the task next runs); a task in
  // uninterruptible sleep stops only when it leaves it. Past the bound we kill what we have.
  const deadline = Date.now() + (opts.settleMs ?? 2000);
  for (let pass = 0; ; pass++) {
    // Only a scan that starts with everybody stopped is the whole truth: while a task
    // still runs it may fork, or exit a thread (its children move to another thread
    // under our feet).
    const allStopped = [...tree].every(settled);
    let grew = false;
    for (const pid of [...tree]) {
      for (const c of childrenOf(pid)) {
        if (tree.has(c)) continue;
        tree.add(c);
        signal(c, 'SIGSTOP');
        grew = true;
      }
    }
    if (allStopped && !grew) break;
    if (Date.now() > deadline) break;
    // Stopping takes microseconds unless a task sleeps uninterruptibly: then poll gently.
    await new Promise((r) => (pass < 20 ? setImmediate(r) : setTimeout(r, 10)));
  }
  for (const pid of tree) signal(pid, 'SIGKILL');
  return [...tree];
}

/** Children of every thread of pid (a Go program such as runc forks from any thread). */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tasks) {
    try {
      for (const c of readFileSync(`/proc/${pid}/task/${tid}/children`, 'latin1').split(/\s+/)) if (c !== '') out.push(Number(c));
    } catch {
      // thread gone
    }
  }
  return out;
}

/** Every process below pid, as now. */
export function descendantsOf(pid: number): number[] {
  const out: number[] = [];
  const walk = (p: number) => {
    for (const c of childrenOf(p)) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

/** Every thread stopped, a zombie or gone: it will not fork any more. */
function settled(pid: number): boolean {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return true;
  }
  return tasks.every((tid) => {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'latin1');
    } catch {
      return true;
    }
    const state = stat.charAt(stat.lastIndexOf(')') + 2);
    return state === 'T' || state === 't' || state === 'Z' || state === 'X';
  });
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // gone already
  }
}
