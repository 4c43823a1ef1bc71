import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { SysCallError, sysHelper } from '../../src/host/sys-helper.js';

// The syscall helper's client: answers matched to requests, errors with errno, a dead
// helper replaced by the next request. Only requests without side effects on the host
// (it needs root, as every test run here has).

const dir = mkdtempSync(join(tmpdir(), 'cricket-sys-helper-'));
after(() => {
  sysHelper.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('umount of what is not mounted is a success that says so; many requests at once each get their own answer', async () => {
  assert.deepEqual(await sysHelper.request('umount', { target: join(dir, 'nothing') }), { was: false, lazy: false });
  const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => sysHelper.request('netdev', { netns: i % 2 ? '/proc/self/ns/net' : join(dir, `no-ns-${i}`) }).then((r) => r.text, (e: unknown) => e)));
  answers.forEach((a, i) => {
    if (i % 2) assert.match(a as string, /Inter-\|/, `request ${i}: /proc/net/dev`);
    else assert.ok(a instanceof SysCallError && a.errno === 2 && a.message.includes(`no-ns-${i}`), `request ${i}: ENOENT naming its path`);
  });
});

test('a failed mount is a SysCallError with the errno and what was asked', async () => {
  const target = join(dir, 'missing', 'target');
  await assert.rejects(sysHelper.request('mount', { source: 'tmpfs', target, fstype: 'tmpfs' }), (e: unknown) => {
    assert.ok(e instanceof SysCallError);
    assert.equal(e.errno, 2);
    assert.match(e.message, new RegExp(`mount tmpfs on ${target}`));
    return true;
  });
});

test('a helper that dies is replaced by the next request', async () => {
  await sysHelper.request('umount', { target: join(dir, 'nothing') });
  const first = sysHelper.pid;
  assert.ok(first !== undefined);
  const gone = new Promise<void>((resolve) => {
    const t = setInterval(() => {
      try {
        process.kill(first, 0);
      } catch {
        clearInterval(t);
        resolve();
      }
    }, 5);
  });
  process.kill(first, 'SIGKILL');
  await gone;
  assert.deepEqual(await sysHelper.request('umount', { target: join(dir, 'nothing') }), { was: false, lazy: false });
  assert.notEqual(sysHelper.pid, first);
});

test('execfifo starts a process waiting on its fifo as runc start does; no fifo and a gone process are told apart', async () => {
  const fifo = join(dir, 'exec.fifo');
  execFileSync('mkfifo', [fifo]);
  // A stand-in for runc init: blocks opening the fifo for writing, writes a byte, goes on.
  const init = spawn('/bin/sh', ['-c', `printf 0 > ${fifo}; echo started`], { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  init.stdout.on('data', (b: Buffer) => (out += b.toString()));
  const exited = once(init, 'close');
  assert.deepEqual(await sysHelper.request('execfifo', { path: fifo, pid: init.pid!, timeoutMs: 10_000 }), { started: true });
  await exited;
  assert.equal(out, 'started\n', 'the waiting process went on');
  assert.equal(existsSync(fifo), false, 'the fifo is removed, as runc start removes it');
  assert.deepEqual(await sysHelper.request('execfifo', { path: fifo, pid: process.pid, timeoutMs: 10_000 }), { started: false });
  // A fifo whose writer is gone (an init that died before its start).
  execFileSync('mkfifo', [fifo]);
  const dead = spawn('/bin/true');
  await once(dead, 'close');
  await assert.rejects(sysHelper.request('execfifo', { path: fifo, pid: dead.pid!, timeoutMs: 10_000 }), (e: unknown) => e instanceof SysCallError && /already gone/.test(e.message));
  assert.ok(existsSync(fifo), 'left for the runtime to clean up');
});
