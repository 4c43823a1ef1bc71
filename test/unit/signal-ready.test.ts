import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { signalWouldReach, waitUntilSignalReaches } from '../../src/host/signal-ready.js';

// What the kernel does with a signal to a PID namespace's init, read from /proc, on real
// processes (unshare from util-linux; needs root, as every test run here has).

/** Runs script as pid 1 of a new PID namespace; resolves with its host pid once it printed "ready". */
async function nsInit(script: string) {
  const child = spawn('unshare', ['--pid', '--fork', '--kill-child', '/bin/sh', '-c', `${script}`], { stdio: ['ignore', 'pipe', 'ignore'] });
  await new Promise<void>((resolve) => child.stdout.on('data', (b: Buffer) => b.toString().includes('ready') && resolve()));
  const children = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/).map(Number);
  return { pid: children[0]!, stop: async () => (child.kill('SIGKILL'), await once(child, 'close')) };
}

test('a PID namespace init gets a terminating signal only once it has a handler; other processes always', async (t) => {
  const plain = await nsInit('echo ready; exec sleep 100');
  t.after(plain.stop);
  assert.equal(signalWouldReach(plain.pid, 'SIGTERM'), false, 'sleep as pid 1 has no handler: SIGTERM would be dropped');
  assert.equal(signalWouldReach(plain.pid, 'SIGKILL'), true);
  const trapping = await nsInit("trap 'exit 0' TERM; echo ready; while :; do sleep 0.05; done");
  t.after(trapping.stop);
  assert.equal(signalWouldReach(trapping.pid, 'SIGTERM'), true, 'a shell that traps TERM gets it');
  assert.equal(signalWouldReach(trapping.pid, 'SIGUSR2'), false, 'one it does not trap');
  assert.equal(signalWouldReach(process.pid, 'SIGTERM'), true, 'not an init: default actions apply');
  assert.equal(signalWouldReach(2 ** 22 + 7, 'SIGTERM'), undefined, 'no such process');
  // The wait ends at once when the signal would reach, and at its bound when it never will.
  await waitUntilSignalReaches(trapping.pid, 'SIGTERM', 60_000);
  await waitUntilSignalReaches(plain.pid, 'SIGTERM', 50);
});
