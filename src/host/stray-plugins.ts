import { readdirSync, readFileSync } from 'node:fs';

/**
 * CNI plugin processes a previous daemon started and did not live to see finish: their
 * environment names a CNI_NETNS under `netnsRoot` (so only this daemon's pods match,
 * never another daemon's). Recovery ends them before it releases networks; a plugin
 * finishing an ADD after the release would leave its veth and IP behind for good.
 */
export function findStrayPlugins(netnsRoot: string): number[] {
  const prefix = `CNI_NETNS=${netnsRoot.replace(/\/$/, '')}/`;
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let env: string;
    try {
      env = readFileSync(`/proc/${entry}/environ`, 'latin1');
    } catch {
      continue; // gone, or not ours to read
    }
    const vars = env.split('\0');
    if (vars.some((v) => v.startsWith('CNI_COMMAND=')) && vars.some((v) => v.startsWith(prefix))) found.push(Number(entry));
  }
  return found;
}

/** SIGKILLs the given processes and waits (bounded) until they are gone. */
export async function killAndWait(pids: readonly number[], timeoutMs = 5000): Promise<void> {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  const deadline = Date.now() + timeoutMs;
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return !readFileSync(`/proc/${pid}/stat`, 'latin1').includes(') Z ');
    } catch {
      return false;
    }
  };
  while (pids.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}
