import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { descendantsOf, killProcessTree } from '../../src/host/process-tree.js';

// killProcessTree against real processes: a shell that keeps forking, with children
// and grandchildren. Whatever was below the top when it was called is dead after, and
// nothing it forked meanwhile escaped.

/** Live processes running exactly `sleep <n>`. */
const sleeping = (n: number) =>
  readdirSync('/proc').filter((p) => {
    try {
      return /^\d+$/.test(p) && readFileSync(`/proc/${p}/cmdline`, 'utf8') === `sleep\0${n}\0`;
    } catch {
      return false;
    }
  });

const alive = (pid: number) => {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return !/^\d+ \(.*\) [ZX]/.test(st);
  } catch {
    return false;
  }
};

test('a forking tree is frozen and killed whole, including what the top forked while it was being killed', async () => {
  // Grandchildren that outlive their parents, and a loop forking all the while.
  const n = 1_000_000 + randomInt(1_000_000);
  const script = `for i in 1 2 3 4; do (sleep ${n} & sleep ${n}; wait) & done; while :; do sleep ${n} & sleep 0.01; done`;
  const child = spawn('/bin/sh', ['-c', script], { stdio: 'ignore' });
  const exited = new Promise((r) => child.once('exit', r));
  const deadline = Date.now() + 10_000;
  while (sleeping(n).length < 12 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  const seen = sleeping(n).map(Number);
  assert.ok(seen.length >= 12, `the tree grew (${seen.length})`);
  const killed = await killProcessTree([child.pid!]);
  await exited;
  for (const p of seen) assert.ok(killed.includes(p), `${p} was in the frozen tree`);
  const until = Date.now() + 5000;
  while (sleeping(n).length > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(sleeping(n), [], 'nothing of the tree escaped');
});

test('a second top that is also below the first is killed with it, its children too', async () => {
  const child = spawn('/bin/sh', ['-c', 'sh -c "sleep 1000 & sleep 1000; wait" & wait'], { stdio: 'ignore' });
  const exited = new Promise((r) => child.once('exit', r));
  const deadline = Date.now() + 10_000;
  while (descendantsOf(child.pid!).length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  const inner = descendantsOf(child.pid!)[0]!;
  const killed = await killProcessTree([child.pid!, inner]);
  await exited;
  assert.equal(killed.length, 4);
  for (const p of killed) {
    const until = Date.now() + 5000;
    while (alive(p) && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    assert.equal(alive(p), false, `${p} is dead`);
  }
  assert.deepEqual(await killProcessTree([999_999_999]), [999_999_999], 'an unknown pid is no error');
});
