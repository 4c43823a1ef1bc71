import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pino } from 'pino';
import { CricketError } from '../../src/core/errors.js';
import { ContainerConfig, ContainerEventType, ContainerState } from '../../src/gen/runtime/v1/api.js';
import { Container, ContainerStore, type ContainerMeta } from '../../src/services/containers/container-store.js';
import { toBase64 } from '../../src/store/proto-base64.js';
import { EventBus } from '../../src/services/events/event-bus.js';
import { filterContainers } from '../../src/services/containers/list-containers.js';
import { toCriStatus } from '../../src/services/containers/to-cri.js';
import { ExitWatcher } from '../../src/runtime/exit-watcher.js';
import { conmonArgs } from '../../src/runtime/conmon.js';

const hex = (c: string) => c.repeat(64);

function meta(id: string, pod: string, name: string, labels: Record<string, string> = {}): ContainerMeta {
  return {
    v: 1,
    id,
    podSandboxId: pod,
    name,
    attempt: 0,
    config: toBase64(ContainerConfig, ContainerConfig.fromPartial({ metadata: { name }, labels, image: { image: 'img' } })),
    imageId: 'sha256:' + hex('9'),
    imageName: 'img:1',
    logPath: '/logs/x.log',
    conmonLogPath: '/logs/x.log',
    bundleDir: `/run/c/${id}`,
    layerDir: `/var/c/${id}`,
    runtimeHandler: '',
    runtimePath: '/usr/sbin/runc',
    runtimeRoot: '/run/runc',
    runtimeArgs: [],
    runtimeType: 'oci',
    cgroupsPath: `/pod/${id}`,
    stopSignal: 'SIGTERM',
    createdAt: '1000',
    user: { uid: 1, gid: 2, additionalGids: [3], username: 'u' },
    imageVolumes: [],
  };
}
const status = (state: 'created' | 'running' | 'exited') => ({ v: 1 as const, state, pid: 5, startedAt: '0', finishedAt: '0', exitCode: 0, reason: '', message: '', resources: '' });

test('store: name reservation per pod, records survive a reload, prefixes resolve', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ctr-store-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const s = new ContainerStore(dir);
  const key = ContainerStore.nameKey('p1', 'web', 0);
  s.reserveName(key, hex('a'));
  assert.throws(() => s.reserveName(key, hex('b')), (e: unknown) => e instanceof CricketError && e.code === 'AlreadyExists' && e.message.includes(hex('a')));
  s.reserveName(ContainerStore.nameKey('p2', 'web', 0), hex('b')); // another pod
  s.reserveName(ContainerStore.nameKey('p1', 'web', 1), hex('c')); // another attempt
  s.releaseName(key, hex('z')); // not the holder: no effect
  assert.throws(() => s.reserveName(key, hex('d')));
  s.releaseName(key, hex('a'));
  s.reserveName(key, hex('a'));

  const c = new Container(meta(hex('a'), 'p1', 'web', { app: 'x' }), status('running'));
  await s.add(c);
  c.status = { ...c.status, state: 'exited', exitCode: 3, reason: 'Error' };
  await s.update(c);
  writeFileSync(join(dir, 'meta', 'broken.json'), '{');
  // A create cut between its two record writes: recovery undoes it.
  const half = new Container(meta(hex('b'), 'p1', 'half'), status('created'));
  await s.add(half);
  rmSync(join(dir, 'status', `${hex('b')}.json`));

  const again = new ContainerStore(dir);
  const { loaded, unreadable, halfWritten } = await again.load();
  assert.deepEqual(loaded.map((x) => x.id), [hex('a')]);
  assert.deepEqual(unreadable.map((u) => u.id), ['broken']);
  assert.deepEqual(halfWritten, [hex('b')]);
  assert.equal(again.get(hex('b')), undefined, 'a half-written container is not loaded');
  again.reserveName(ContainerStore.nameKey('p1', 'half', 0), hex('c'));
  await again.removeRecords(hex('b'));
  assert.deepEqual(readdirSync(join(dir, 'meta')).sort(), [`${hex('a')}.json`, 'broken.json']);
  const back = again.resolve('aaaa')!;
  assert.equal(back.status.exitCode, 3);
  assert.equal(back.config.labels['app'], 'x');
  assert.throws(() => again.reserveName(key, hex('e')), 'the reservation is restored with the record');
  const st = toCriStatus(back);
  assert.equal(st.state, ContainerState.CONTAINER_EXITED);
  assert.equal(st.imageRef, 'sha256:' + hex('9'));
  assert.equal(st.user?.linux?.uid, 1n);
  await again.remove(back);
  again.reserveName(key, hex('f'));
  assert.equal((await new ContainerStore(dir).load()).loaded.length, 0);
});

test('filters: id and pod prefixes, state, labels', () => {
  const a = new Container(meta(hex('a'), hex('1'), 'a', { app: 'x', tier: 'web' }), status('running'));
  const b = new Container(meta(hex('b'), hex('2'), 'b', { app: 'x' }), status('exited'));
  const ids = (f: Parameters<typeof filterContainers>[1]) => filterContainers([a, b], f).map((c) => c.meta.name);
  assert.deepEqual(ids(undefined), ['a', 'b']);
  assert.deepEqual(ids({ id: 'bb', podSandboxId: '', labelSelector: {}, state: undefined }), ['b']);
  assert.deepEqual(ids({ id: '', podSandboxId: '11', labelSelector: {}, state: undefined }), ['a']);
  assert.deepEqual(ids({ id: '', podSandboxId: '', labelSelector: {}, state: { state: ContainerState.CONTAINER_EXITED } }), ['b']);
  assert.deepEqual(ids({ id: '', podSandboxId: '', labelSelector: { app: 'x', tier: 'web' }, state: undefined }), ['a']);
});

test('exit watcher: existing and new exit files are reported once they hold a code', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ctr-exits-'));
  const seen: [string, number][] = [];
  const w = new ExitWatcher(dir, pino({ level: 'silent' }), (id, code) => seen.push([id, code]));
  t.after(() => {
    w.close();
    rmSync(dir, { recursive: true, force: true });
  });
  writeFileSync(join(dir, hex('a')), '3');
  writeFileSync(join(dir, 'not-an-id'), '1');
  await w.start();
  assert.deepEqual(seen, [[hex('a'), 3]]);
  writeFileSync(join(dir, hex('b')), '');
  writeFileSync(join(dir, hex('b')), '137');
  for (let i = 0; i < 100 && !seen.some(([id]) => id === hex('b')); i++) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(seen.find(([id]) => id === hex('b')), [hex('b'), 137]);
  assert.equal(await w.check(hex('c')), undefined);
  await w.forget(hex('a'));
  assert.equal(await w.check(hex('a')), undefined);
});

test('event bus fans out to every subscriber until unsubscribed; a stopped container wakes waiters', async () => {
  const bus = new EventBus();
  const got: number[] = [];
  const off = bus.subscribe((e) => got.push(e.containerEventType!));
  bus.publish({ containerId: 'x', containerEventType: ContainerEventType.CONTAINER_CREATED_EVENT });
  off();
  bus.publish({ containerId: 'x', containerEventType: ContainerEventType.CONTAINER_DELETED_EVENT });
  assert.deepEqual(got, [ContainerEventType.CONTAINER_CREATED_EVENT]);
  assert.equal(bus.size, 0);

  const c = new Container(meta(hex('a'), 'p', 'n'), status('running'));
  assert.equal(await c.waitExit(10), false);
  const waiting = c.waitExit(10_000);
  c.status = { ...c.status, state: 'exited' };
  c.notifyExit();
  assert.equal(await waiting, true);
});

test('conmon is driven with the flags CRI-O uses', () => {
  const args = conmonArgs({
    conmonPath: '/usr/bin/conmon', runtimePath: '/usr/sbin/runc', runtimeRoot: '/run/runc', runtimeArgs: ['--platform=systrap'], id: hex('a'), name: 'web', bundleDir: '/b',
    logPath: '/l/0.log', exitDir: '/e', socketDir: '/s', stdin: true, stdinOnce: true, tty: true, logLevel: 'info', timeoutMs: 1,
  });
  const joined = args.join(' ');
  for (const part of ['--api-version 1', `-c ${hex('a')}`, `-u ${hex('a')}`, '-r /usr/sbin/runc', '-b /b', '-p /b/pidfile', '-P /b/conmon.pid', '-l k8s-file:/l/0.log', '--exit-dir /e', '--socket-dir-path /s', '--runtime-arg --root=/run/runc --runtime-arg --platform=systrap', '-t', '-i']) {
    assert.ok(joined.includes(part), part);
  }
  assert.ok(!args.includes('--leave-stdin-open'), 'stdin_once closes stdin when the client detaches');
  assert.ok(!args.includes('-s') && !args.includes('--syslog'));
});
