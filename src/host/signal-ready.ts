import { readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Whether a signal sent now would reach the process, as far as the kernel decides it:
 * the init of a PID namespace (a container's process without a shared pod PID
 * namespace) gets no signal whose default action would end it until it installs a
 * handler — such a signal is dropped, not kept pending. undefined when the process is
 * gone or /proc cannot say.
 */
export function signalWouldReach(pid: number, signal: NodeJS.Signals): boolean | undefined {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const nspid = /^NSpid:\s+(.+)$/m.exec(status)?.[1]?.trim().split(/\s+/);
  if (!nspid || nspid[nspid.length - 1] !== '1') return true; // not a namespace's init: default actions apply
  const n = constants.signals[signal];
  if (n === undefined || signal === 'SIGKILL' || signal === 'SIGSTOP') return true; // the kernel forces these on any init from outside
  const caught = /^SigCgt:\s+([0-9a-f]+)$/m.exec(status)?.[1];
  if (caught === undefined) return undefined;
  return (BigInt(`0x${caught}`) >> BigInt(n - 1)) & 1n ? true : false;
}

/**
 * Waits, up to `ms`, until the signal would reach the process (see signalWouldReach).
 * A container stopped moments after its start — kubelet deleting a pod it just made, a
 * test — would otherwise lose its stop signal to the window between exec and the
 * program installing its handler, and wait out its whole grace period. Resolves at once
 * for a process that is not a namespace's init, or gone.
 */
export async function waitUntilSignalReaches(pid: number, signal: NodeJS.Signals, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (signalWouldReach(pid, signal) === false && Date.now() < deadline) await sleep(10);
}
