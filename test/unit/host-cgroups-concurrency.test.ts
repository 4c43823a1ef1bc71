import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureCgroup } from '../../src/host/cgroups.js';
import { removeDir, tempDir } from '../helpers/daemon.js';

// ensureCgroup on a fake v1 tree (plain dirs and files, so it runs without root): the
// shared parent several pods create at once must be initialised before any of them
// puts a child below it, and a level someone else made but left empty gets set up.

function fakeTree(t: { after(fn: () => unknown): void }): string {
  const root = tempDir('cricket-cgroot-');
  t.after(() => removeDir(root));
  for (const c of ['cpuset', 'memory', 'pids']) {
    mkdirSync(join(root, c), { recursive: true });
    writeFileSync(join(root, c, 'cgroup.procs'), '');
  }
  writeFileSync(join(root, 'cpuset', 'cpuset.cpus'), '0-3');
  writeFileSync(join(root, 'cpuset', 'cpuset.mems'), '0');
  return root;
}

const cpus = (root: string, rel: string) => readFileSync(join(root, 'cpuset', rel, 'cpuset.cpus'), 'utf8');

test('ten pods creating one missing parent at once: it is made once, and every level has cpus and mems', async (t) => {
  const root = fakeTree(t);
  const created = await Promise.all(Array.from({ length: 10 }, (_, i) => ensureCgroup(`/shared/qos/pod${i}`, root)));
  for (let i = 0; i < 10; i++) {
    assert.equal(cpus(root, `shared/qos/pod${i}`), '0-3');
    assert.equal(readFileSync(join(root, 'cpuset', `shared/qos/pod${i}`, 'cpuset.mems'), 'utf8'), '0');
  }
  assert.equal(cpus(root, 'shared/qos'), '0-3');
  // Each shared level is claimed by exactly one pod (that pod's removal may take it when empty).
  const all = created.flat();
  for (const c of ['cpuset', 'memory', 'pids']) {
    assert.equal(all.filter((d) => d === join(root, c, 'shared')).length, 1, `${c}/shared claimed once`);
    assert.equal(all.filter((d) => d === join(root, c, 'shared/qos')).length, 1, `${c}/shared/qos claimed once`);
  }
  assert.equal(all.length, 3 * (2 + 10));
});

test('a parent another process made but has not initialised yet is initialised before use', async (t) => {
  const root = fakeTree(t);
  // As runc or another daemon leaves it between its mkdir and its copy.
  mkdirSync(join(root, 'cpuset', 'theirs'));
  writeFileSync(join(root, 'cpuset', 'theirs', 'cpuset.cpus'), '\n');
  writeFileSync(join(root, 'cpuset', 'theirs', 'cpuset.mems'), '');
  const created = await ensureCgroup('/theirs/pod', root);
  assert.ok(!created.includes(join(root, 'cpuset', 'theirs')), 'not ours to remove');
  assert.equal(cpus(root, 'theirs'), '0-3');
  assert.equal(cpus(root, 'theirs/pod'), '0-3');
  // A level with its own cpus keeps them.
  mkdirSync(join(root, 'cpuset', 'pinned'));
  writeFileSync(join(root, 'cpuset', 'pinned', 'cpuset.cpus'), '1');
  writeFileSync(join(root, 'cpuset', 'pinned', 'cpuset.mems'), '0');
  await ensureCgroup('/pinned/pod', root);
  assert.equal(cpus(root, 'pinned'), '1');
  assert.equal(cpus(root, 'pinned/pod'), '1');
});
