import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { CgroupDriver } from '../../src/gen/runtime/v1/api.js';
import { CriCallError, CriClient } from '../../src/client/cri-client.js';
import { CRICKET, removeDir, runDaemonToExit, startDaemon, tempDir } from '../helpers/daemon.js';

test('cricketd serves Version, Status, RuntimeConfig and UpdateRuntimeConfig', async (t) => {
  const cni = tempDir('cricket-cni-');
  const d = await startDaemon({ args: ['--cni-conf-dir', cni] });
  t.after(async () => {
    await d.cleanup();
    removeDir(cni);
  });
  assert.equal(statSync(d.socket).mode & 0o777, 0o660);

  const v = await d.client.call('Version', {});
  assert.equal(v.runtimeName, 'cricket');
  assert.equal(v.runtimeApiVersion, 'v1');
  assert.match(v.runtimeVersion, /^\d+\.\d+\.\d+/);

  let s = await d.client.call('Status', {});
  const cond = (type: string) => s.status!.conditions.find((c) => c.type === type)!;
  assert.equal(cond('RuntimeReady').status, true);
  assert.equal(cond('NetworkReady').status, false);
  assert.equal(cond('NetworkReady').reason, 'NetworkPluginNotReady');
  assert.deepEqual(s.info, {});
  assert.ok(s.runtimeHandlers.some((h) => h.name === 'runc'));

  // A valid CNI config makes the network ready without a restart.
  writeFileSync(
    join(cni, '10-test.conflist'),
    JSON.stringify({ cniVersion: '1.0.0', name: 'test', plugins: [{ type: 'loopback' }] }),
  );
  s = await d.client.call('Status', { verbose: true });
  assert.equal(cond('NetworkReady').status, true);
  assert.equal(JSON.parse(s.info['config']!).daemon.listen, d.socket);
  assert.ok(JSON.parse(s.info['buildInfo']!).version);

  const rc = await d.client.call('RuntimeConfig', {});
  assert.equal(rc.linux?.cgroupDriver, CgroupDriver.CGROUPFS);

  await d.client.call('UpdateRuntimeConfig', { runtimeConfig: { networkConfig: { podCidr: '10.99.0.0/16' } } });
  s = await d.client.call('Status', { verbose: true });
  assert.equal(JSON.parse(s.info['runtimeSettings']!).podCidr, '10.99.0.0/16');
  await assert.rejects(
    d.client.call('UpdateRuntimeConfig', { runtimeConfig: { networkConfig: { podCidr: '10.99.0.0/99' } } }),
    (e: CriCallError) => e.code === status.INVALID_ARGUMENT,
  );
});

test('an RPC not implemented yet answers UNIMPLEMENTED naming it', async (t) => {
  const d = await startDaemon();
  t.after(() => d.cleanup());
  await assert.rejects(d.client.call('CheckpointContainer', { containerId: 'x' }), (e: CriCallError) => {
    return e.code === status.UNIMPLEMENTED && /CheckpointContainer/.test(e.details);
  });
});

test('SIGTERM exits 0 promptly and removes the socket; the pod CIDR survives a restart', async (t) => {
  const dir = tempDir();
  t.after(() => removeDir(dir));
  const d = await startDaemon({ dir });
  await d.client.call('UpdateRuntimeConfig', { runtimeConfig: { networkConfig: { podCidr: '10.77.0.0/16' } } });
  d.client.close();
  const started = Date.now();
  assert.equal(await d.stop(), 0);
  assert.ok(Date.now() - started < 2000, `stopped in ${Date.now() - started} ms`);
  assert.equal(existsSync(d.socket), false);
  assert.equal(existsSync(join(d.runRoot, 'cricketd.pid')), false);

  const again = await startDaemon({ dir });
  t.after(() => again.cleanup());
  const s = await again.client.call('Status', { verbose: true });
  assert.equal(JSON.parse(s.info['runtimeSettings']!).podCidr, '10.77.0.0/16');
});

test('a second daemon on the same socket or run root is refused and changes nothing', async (t) => {
  const d = await startDaemon();
  t.after(() => d.cleanup());
  const other = tempDir();
  t.after(() => removeDir(other));
  const sameSocket = await runDaemonToExit(['--listen', d.socket, '--root', join(other, 'r'), '--run-root', join(other, 'rr')]);
  assert.notEqual(sameSocket.code, 0);
  assert.match(sameSocket.stderr, /^cricketd: another daemon is already serving .*cricket\.sock\n$/);
  assert.equal(existsSync(join(other, 'r')), false);
  assert.equal(existsSync(join(other, 'rr')), false);

  const sameRunRoot = await runDaemonToExit(['--listen', join(other, 's.sock'), '--root', join(other, 'r'), '--run-root', d.runRoot]);
  assert.notEqual(sameRunRoot.code, 0);
  assert.match(sameRunRoot.stderr, /another cricketd \(pid \d+\) is using run root/);
  // The first daemon is untouched.
  assert.equal((await d.client.call('Version', {})).runtimeName, 'cricket');
});

test('a stale socket left by a dead daemon is replaced', async (t) => {
  const dir = tempDir();
  t.after(() => removeDir(dir));
  const first = await startDaemon({ dir });
  first.client.close();
  // Simulate a crash: SIGKILL the daemon itself (under catatonit, the node child).
  const pid = Number((await import('node:fs')).readFileSync(join(first.runRoot, 'cricketd.pid'), 'utf8'));
  process.kill(pid, 'SIGKILL');
  await new Promise((r) => first.child.once('exit', r));
  assert.ok(existsSync(first.socket), 'the socket file is left behind');
  const second = await startDaemon({ dir });
  t.after(() => second.cleanup());
  assert.equal((await second.client.call('Version', {})).runtimeName, 'cricket');
});

test('bad flags, bad config and unusable socket paths stop with one clear line', async (t) => {
  const dir = tempDir();
  t.after(() => removeDir(dir));
  const base = ['--root', join(dir, 'root'), '--run-root', join(dir, 'run')];

  const unknown = await runDaemonToExit(['--frobnicate']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /^cricketd: Unknown option '--frobnicate'.*\n$/);

  writeFileSync(join(dir, 'bad.toml'), '[daemon]\nshutdown_grace_seconds = -1\n');
  const badConfig = await runDaemonToExit([...base, '--config', join(dir, 'bad.toml'), '--listen', join(dir, 'a.sock')]);
  assert.equal(badConfig.code, 2);
  assert.match(badConfig.stderr, /bad\.toml: key daemon\.shutdown_grace_seconds/);
  assert.equal(badConfig.stderr.trim().split('\n').length, 1);

  mkdirSync(join(dir, 'ro'));
  chmodSync(join(dir, 'ro'), 0o555);
  // root ignores permission bits, so make the parent a file to get a real failure.
  writeFileSync(join(dir, 'file'), '');
  const badSocket = await runDaemonToExit([...base, '--listen', join(dir, 'file', 'c.sock'), '--config', join(dir, 'none.toml')]);
  assert.notEqual(badSocket.code, 0);
  assert.match(badSocket.stderr, /^cricketd: .*c\.sock|^cricketd: .*file/);
  assert.equal(badSocket.stderr.trim().split('\n').length, 1);

  const notSocket = await runDaemonToExit([...base, '--listen', join(dir, 'bad.toml')]);
  assert.notEqual(notSocket.code, 0);
  assert.match(notSocket.stderr, /exists and is not a socket/);
  assert.ok(existsSync(join(dir, 'bad.toml')));
});

test('the cricket CLI talks to the socket via --endpoint or CONTAINER_RUNTIME_ENDPOINT', async (t) => {
  const d = await startDaemon();
  t.after(() => d.cleanup());
  const byFlag = spawnSync(CRICKET, ['--endpoint', `unix://${d.socket}`, 'version'], { encoding: 'utf8' });
  assert.equal(byFlag.status, 0, byFlag.stderr);
  assert.match(byFlag.stdout, /RuntimeName:\s+cricket/);
  const byEnv = spawnSync(CRICKET, ['info'], { encoding: 'utf8', env: { ...process.env, CONTAINER_RUNTIME_ENDPOINT: `unix://${d.socket}` } });
  assert.equal(byEnv.status, 0, byEnv.stderr);
  const info = JSON.parse(byEnv.stdout);
  assert.equal(info.status.conditions[0].type, 'RuntimeReady');
  const down = spawnSync(CRICKET, ['--endpoint', `unix://${d.dir}/nope.sock`, '--timeout', '1', 'version'], { encoding: 'utf8' });
  assert.equal(down.status, 1);
  assert.match(down.stderr, /^cricket: Version: /);
});

test('the generic wrapper turns a deadline into DEADLINE_EXCEEDED on the client', async (t) => {
  const d = await startDaemon();
  t.after(() => d.cleanup());
  const c = new CriClient(`unix://${d.socket}`);
  t.after(() => c.close());
  await assert.rejects(c.call('Version', {}, { timeoutMs: 0 }), (e: CriCallError) => e.code === status.DEADLINE_EXCEEDED);
});
