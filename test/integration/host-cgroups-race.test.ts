import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { addProcess, ensureCgroup, hierarchies, removeCgroup, removeCgroupIfUnused } from '../../src/host/cgroups.js';
import { removeCgroupTree } from './durability-env.js';

// The real cgroupfs, as root: pods meeting at a shared parent cgroup that does not
// exist yet (as the default /cricket after the last pod went), at kubelet's 10-way
// parallelism. On cgroup v1 a cpuset dir starts empty and refuses tasks with ENOSPC,
// so a pod that puts its child under a parent another pod has made but not yet
// initialised cannot take its init process. The parent is private to the test.

const WAYS = 10;

/** A short-lived process to move into a cgroup (what the pod init is in RunPodSandbox). */
async function withProcess(fn: (pid: number) => Promise<void>): Promise<void> {
  const child = spawn('sleep', ['600'], { stdio: 'ignore' });
  const exited = new Promise((r) => child.once('exit', r));
  try {
    await fn(child.pid!);
  } finally {
    child.kill('SIGKILL');
    await exited;
  }
}

function leftUnder(rel: string): string[] {
  return hierarchies().filter((h) => existsSync(join(h, rel))).map((h) => join(h, rel));
}

test(`${WAYS} pods creating one new shared parent at once all take a process (5 rounds)`, { timeout: 120_000 }, async (t) => {
  const parent = `/ckcg${randomBytes(3).toString('hex')}`;
  t.after(() => removeCgroupTree(parent));
  for (let round = 0; round < 5; round++) {
    const results = await Promise.allSettled(
      Array.from({ length: WAYS }, async (_, i) => {
        const path = `${parent}/r${round}/pod${i}`;
        const created = await ensureCgroup(path);
        await withProcess((pid) => addProcess(path, pid));
        return created;
      }),
    );
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => String(r.reason));
    assert.deepEqual(failed, [], `round ${round}: ${failed.length} of ${WAYS} could not take a process`);
    // Torn down at once as well: every pod removes what it made; the shared levels go with the last.
    await Promise.all(results.map((r) => removeCgroup((r as PromiseFulfilledResult<string[]>).value)));
    await removeCgroupIfUnused(`${parent}/r${round}`);
    assert.deepEqual(leftUnder(`${parent}/r${round}`), [], 'nothing left of the round');
  }
});

test('pods churning under one shared parent while another process does the same: no failure, nothing left', { timeout: 180_000 }, async (t) => {
  const parent = `/ckcg${randomBytes(3).toString('hex')}`;
  t.after(() => removeCgroupTree(parent));
  // A second process (another daemon on the host) racing on the same parent: its
  // teardown can remove the parent between our steps, which no in-process lock sees.
  const modUrl = new URL('../../src/host/cgroups.js', import.meta.url).href;
  const other = spawn(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `const { ensureCgroup, addProcess, removeCgroup, removeCgroupIfUnused } = await import(${JSON.stringify(modUrl)});
       const { spawn } = await import('node:child_process');
       let fails = [];
       await Promise.all(Array.from({ length: ${WAYS} }, async (_, w) => {
         for (let k = 0; k < 8; k++) {
           const path = ${JSON.stringify(parent)} + '/other-' + w + '-' + k;
           try {
             const created = await ensureCgroup(path);
             const c = spawn('sleep', ['600'], { stdio: 'ignore' });
             const gone = new Promise((r) => c.once('exit', r));
             try { await addProcess(path, c.pid); } finally { c.kill('SIGKILL'); await gone; }
             await removeCgroup(created);
             await removeCgroupIfUnused(${JSON.stringify(parent)});
           } catch (e) { fails.push(String(e)); }
         }
       }));
       process.stdout.write(JSON.stringify(fails));`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let otherOut = '';
  other.stdout!.on('data', (b: Buffer) => (otherOut += b.toString()));
  const otherDone = new Promise<number | null>((r) => other.once('exit', (code) => r(code)));
  t.after(() => other.kill('SIGKILL'));

  const fails: string[] = [];
  await Promise.all(
    Array.from({ length: WAYS }, async (_, w) => {
      for (let k = 0; k < 8; k++) {
        const path = `${parent}/pod-${w}-${k}`;
        try {
          const created = await ensureCgroup(path);
          await withProcess((pid) => addProcess(path, pid));
          await removeCgroup(created);
          await removeCgroupIfUnused(parent);
        } catch (err) {
          fails.push(String(err));
        }
      }
    }),
  );
  assert.equal(await otherDone, 0, 'the other process ran to the end');
  assert.deepEqual(fails, [], 'this process');
  assert.deepEqual(JSON.parse(otherOut || '[]'), [], 'the other process');
  await removeCgroupIfUnused(parent);
  assert.deepEqual(leftUnder(parent), [], 'the shared parent went with its last pod');
});
