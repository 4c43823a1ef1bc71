import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { findStrayPlugins, killAndWait } from '../../src/host/stray-plugins.js';
import { removeDir, tempDir } from '../helpers/daemon.js';

test('stray CNI plugins are found by their netns under our pods dir, and only those', async (t) => {
  const dir = tempDir('cricket-stray-');
  t.after(() => removeDir(dir));
  const ours = `${dir}/pods`;
  const start = (netns: string, command = 'ADD') =>
    spawn('/bin/sleep', ['30'], { env: { CNI_COMMAND: command, CNI_NETNS: netns }, stdio: 'ignore' });
  const mine = start(`${ours}/${'a'.repeat(64)}/ns/net`);
  const otherDaemon = start(`${dir}/pods-of-another-daemon/${'b'.repeat(64)}/ns/net`);
  const notAPlugin = spawn('/bin/sleep', ['30'], { env: { CNI_NETNS: `${ours}/x/ns/net` }, stdio: 'ignore' });
  t.after(() => {
    for (const p of [mine, otherDaemon, notAPlugin]) p.kill('SIGKILL');
  });
  await new Promise((r) => setTimeout(r, 100));

  const found = findStrayPlugins(`${ours}/`);
  assert.deepEqual(found, [mine.pid]);
  const exited = new Promise((r) => mine.once('exit', r));
  await killAndWait(found);
  await exited;
  assert.equal(mine.signalCode, 'SIGKILL');
  assert.equal(otherDaemon.exitCode, null, 'another daemon\'s plugin is untouched');
  assert.equal(otherDaemon.signalCode, null);
});
