import { constants, existsSync, readdirSync, readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { conmonFiles } from './conmon.js';

// What the daemon does with the files a container's conmon keeps in its bundle: its
// pid file (to end it), its oom marker, its control fifo.

/** conmon's control fifo takes "<type> <a> <b>\n"; type 2 asks it to reopen its log files. */
const REOPEN_LOGS = '2 0 0\n';

/**
 * SIGKILLs the conmon named in the bundle's pid file, and a joining gVisor container's
 * holder, if that pid still is one for this container (its command line names the id),
 * so a reused pid is never hit.
 */
export function killConmon(bundleDir: string, id: string): void {
  for (const file of [conmonFiles(bundleDir).conmonPidFile, `${bundleDir}/${HOLDER_PID_FILE}`]) {
    try {
      const pid = Number(readFileSync(file, 'utf8').trim());
      if (!(pid > 0) || !readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(id)) continue;
      process.kill(pid, 'SIGKILL');
    } catch {
      // no pid file, or the process is gone
    }
  }
  // A joining container's create may still be under way (its holder not forked or its
  // pid not written yet), or its holder outlived a conmon killed earlier: every
  // cricket-runsc-join process for this id goes too. They carry the id and the
  // wrapper's name in their command line.
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc');
  } catch {
    return;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const argv = readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0');
      if (argv.includes(id) && argv.some((a) => a.endsWith(`/${JOIN_WRAPPER_NAME}`))) process.kill(Number(e), 'SIGKILL');
    } catch {
      // gone
    }
  }
}

/** The file name of the runtime wrapper conmon runs for a container joining a gVisor sandbox (bin/, from scripts/runsc-join.sh). */
export const JOIN_WRAPPER_NAME = 'cricket-runsc-join';

/**
 * The pid of a joining gVisor container's holder (scripts/runsc-join.sh), which conmon
 * waits on: killed with conmon, or it would wait for its start forever, reparented.
 */
export const HOLDER_PID_FILE = 'holder.pid';

/** conmon saw the container's cgroup run out of memory. Synchronous: callers decide an exit's reason without an await. */
export function conmonSawOom(bundleDir: string): boolean {
  return existsSync(conmonFiles(bundleDir).oomFile);
}

/**
 * Asks conmon to reopen its log files (after kubelet renamed them). The fifo is opened
 * non-blocking: if conmon is gone there is no reader, and this throws (ENXIO) instead
 * of hanging.
 */
export async function reopenConmonLogs(bundleDir: string): Promise<void> {
  const fh = await open(conmonFiles(bundleDir).ctlFifo, constants.O_WRONLY | constants.O_NONBLOCK);
  try {
    await fh.write(REOPEN_LOGS);
  } finally {
    await fh.close();
  }
}
