import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
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
