import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { CricketError } from '../../src/core/errors.js';
import { LinuxContainerResources, PodSandboxConfig } from '../../src/gen/runtime/v1/api.js';
import { fromBase64, toBase64 } from '../../src/store/proto-base64.js';
import { hostsContent, resolvConfContent } from '../../src/services/pods/pod-files.js';
import { filterSandboxes } from '../../src/services/pods/list-pod-sandbox.js';
import { Sandbox, SandboxStore, type SandboxMeta } from '../../src/services/pods/sandbox-store.js';
import { REPO_ROOT, removeDir, tempDir } from '../helpers/daemon.js';

function meta(id: string, name: string, labels: Record<string, string> = {}): SandboxMeta {
  const config = PodSandboxConfig.fromPartial({
    metadata: { name, namespace: 'ns', uid: 'u', attempt: 0 },
    labels,
    linux: { securityContext: { runAsUser: { value: 1000n } }, resources: { memoryLimitInBytes: 1n << 40n } },
  });
  return {
    v: 2,
    id,
    nameKey: `${name}_ns_u_0`,
    config: toBase64(PodSandboxConfig, config),
    runtimeHandler: 'runc',
    createdAt: String(BigInt(Date.now()) * 1_000_000n + BigInt(id.charCodeAt(0))),
    podDir: `/run/x/${id}`,
    netnsPath: `/run/x/${id}/ns/net`,
    ipcnsPath: null,
    utsnsPath: null,
    pidnsPath: null,
    hostname: name,
    hostsPath: '/h',
    resolvConfPath: '/r',
    shmPath: null,
    cgroupParent: `/cricket/${id}`,
    createdCgroups: [],
    logDirectory: '',
    portMappings: [{ hostPort: 80, containerPort: 8080, protocol: 'tcp' }],
  };
}
const hex = (c: string) => c.repeat(64);

test('names and host ports are reserved synchronously; duplicates name the holder', () => {
  const s = new SandboxStore('/nonexistent/cricket-store');
  s.reserveName('a_ns_u_0', hex('a'));
  s.reserveName('a_ns_u_0', hex('a'));
  assert.throws(() => s.reserveName('a_ns_u_0', hex('b')), (e: unknown) => e instanceof CricketError && e.code === 'AlreadyExists' && e.message.includes(hex('a')));
  s.releaseName('a_ns_u_0', hex('b'));
  assert.throws(() => s.reserveName('a_ns_u_0', hex('b')), /already reserved/);
  s.releaseName('a_ns_u_0', hex('a'));
  s.reserveName('a_ns_u_0', hex('b'));

  s.reservePorts(hex('a'), [{ hostPort: 80, containerPort: 1, protocol: 'tcp' }]);
  assert.throws(
    () => s.reservePorts(hex('b'), [{ hostPort: 80, containerPort: 2, protocol: 'tcp', hostIP: '10.0.0.1' }]),
    (e: unknown) => e instanceof CricketError && e.code === 'FailedPrecondition' && e.message.includes(hex('a')),
  );
  s.reservePorts(hex('b'), [{ hostPort: 80, containerPort: 2, protocol: 'udp' }]);
  s.releasePorts(hex('a'));
  s.reservePorts(hex('c'), [{ hostPort: 80, containerPort: 2, protocol: 'tcp' }]);
});

test('records round-trip through disk, bigint fields included, and restore names and ports', async (t) => {
  const dir = tempDir();
  t.after(() => removeDir(dir));
  const s = new SandboxStore(dir);
  const a = new Sandbox(meta(hex('a'), 'alpha', { app: 'x' }), { v: 2, state: 'ready', ips: ['10.0.0.2'], network: 'n', initPid: null });
  const b = new Sandbox(meta(hex('b'), 'beta'), { v: 2, state: 'notready', ips: [], network: null, initPid: null });
  await s.add(a);
  await s.add(b);

  const again = new SandboxStore(dir);
  const { loaded, unreadable, halfWritten } = await again.load();
  assert.deepEqual([unreadable, halfWritten], [[], []]);
  assert.equal(loaded.length, 2);
  const ra = again.resolve('aaaa')!;
  assert.equal(ra.config.linux?.securityContext?.runAsUser?.value, 1000n);
  assert.equal(ra.config.linux?.resources?.memoryLimitInBytes, 1n << 40n);
  assert.deepEqual(ra.view().ips, ['10.0.0.2']);
  assert.equal(ra.view().netnsPath, `/run/x/${hex('a')}/ns/net`);
  assert.equal(ra.view().ipcnsPath, undefined);
  assert.throws(() => again.reserveName('alpha_ns_u_0', hex('c')), /already reserved/);
  // Only the READY pod keeps its host port.
  assert.throws(() => again.reservePorts(hex('c'), [{ hostPort: 80, containerPort: 1, protocol: 'tcp' }]), new RegExp(hex('a')));

  assert.deepEqual(filterSandboxes(again.list(), { labelSelector: { app: 'x' } }).map((x) => x.id), [hex('a')]);
  assert.deepEqual(filterSandboxes(again.list(), { state: { state: 1 } }).map((x) => x.id), [hex('b')]);
  assert.deepEqual(filterSandboxes(again.list(), { id: 'bb' }).map((x) => x.id), [hex('b')]);
  assert.equal(filterSandboxes(again.list(), undefined).length, 2);

  await again.remove(ra);
  // Removal frees the name and the host port at once, and on disk.
  again.reserveName('alpha_ns_u_0', hex('c'));
  again.reservePorts(hex('c'), [{ hostPort: 80, containerPort: 1, protocol: 'tcp' }]);
  const third = new SandboxStore(dir);
  assert.equal((await third.load()).loaded.length, 1);
  third.reserveName('alpha_ns_u_0', hex('c'));
});

test('a pod whose status record is missing loads NOTREADY, holding its name but not its ports', async (t) => {
  const dir = tempDir();
  t.after(() => removeDir(dir));
  const s = new SandboxStore(dir);
  await s.add(new Sandbox(meta(hex('a'), 'alpha'), { v: 2, state: 'ready', ips: ['10.0.0.2'], network: 'n', initPid: null }));
  rmSync(join(dir, 'status', `${hex('a')}.json`));
  const again = new SandboxStore(dir);
  const { loaded, unreadable, halfWritten } = await again.load();
  assert.deepEqual([loaded.map((x) => [x.id, x.status.state, x.status.ips]), unreadable, halfWritten], [[[hex('a'), 'notready', []]], [], []]);
  assert.throws(() => again.reserveName('alpha_ns_u_0', hex('c')), /already reserved/);
  again.reservePorts(hex('c'), [{ hostPort: 80, containerPort: 1, protocol: 'tcp' }]);
});

test('a pod record written in the v1 format (config as proto JSON) loads exactly, and is written back as v2', async (t) => {
  const dir = tempDir();
  t.after(() => removeDir(dir));
  cpSync(join(REPO_ROOT, 'test', 'fixtures', 'pod-records-v1'), dir, { recursive: true });
  const id = `c0ffee${'0'.repeat(58)}`;
  const s = new SandboxStore(dir);
  const { loaded, unreadable } = await s.load();
  assert.deepEqual(unreadable, []);
  assert.equal(loaded.length, 1);
  const sb = s.get(id)!;
  const c = sb.config;
  assert.deepEqual(c.metadata, { name: 'web-0', namespace: 'shop', uid: '5f8a7c2e-1b1a-4c4f-9d7e-3a2b1c0d9e8f', attempt: 1 });
  assert.deepEqual(c.labels, { app: 'web', 'io.kubernetes.pod.name': 'web-0' });
  assert.equal(c.annotations['note'], 'line one\nline "two"');
  assert.deepEqual(c.dnsConfig?.searches, ['shop.svc.cluster.local', 'svc.cluster.local']);
  assert.equal(c.linux?.securityContext?.runAsUser?.value, 1000n);
  assert.deepEqual(c.linux?.securityContext?.supplementalGroups, [2000n, 3000n]);
  assert.equal(c.linux?.overhead?.memoryLimitInBytes, 1n << 40n);
  assert.equal(c.linux?.resources?.hugepageLimits[0]?.pageSize, '2MB');
  assert.deepEqual(c.linux?.resources?.unified, { 'memory.high': '200000000' });
  // The whole config survives: the v1 JSON read back equals what the v2 bytes decode to.
  const v1 = JSON.parse(readFileSync(join(REPO_ROOT, 'test', 'fixtures', 'pod-records-v1', 'meta', `${id}.json`), 'utf8'));
  assert.deepEqual(PodSandboxConfig.toJSON(c), v1.config);
  assert.equal(sb.resources?.memoryLimitInBytes, 536870912n);
  assert.equal(sb.resources?.cpusetCpus, '0-1');
  assert.equal(sb.overhead?.memoryLimitInBytes, 1n << 33n);
  assert.deepEqual([sb.status.state, sb.status.ips], ['ready', ['10.88.0.7', 'fd00::7']]);
  assert.throws(() => s.reserveName('web-0_shop_5f8a7c2e-1b1a-4c4f-9d7e-3a2b1c0d9e8f_1', hex('d')), /already reserved/);
  assert.throws(() => s.reservePorts(hex('d'), [{ hostPort: 30080, containerPort: 1, protocol: 'tcp' }]), /30080/);

  // Status is rewritten on the next transition, in v2; meta is immutable and stays v1 on disk.
  sb.status = { ...sb.status, state: 'notready' };
  await s.update(sb);
  const st = JSON.parse(readFileSync(join(dir, 'status', `${id}.json`), 'utf8'));
  assert.equal(st.v, 2);
  assert.equal(fromBase64(LinuxContainerResources, st.resources).cpuShares, 1024n);
  const back = new SandboxStore(dir);
  await back.load();
  assert.deepEqual(PodSandboxConfig.toJSON(back.get(id)!.config), v1.config);
  assert.equal(back.get(id)!.status.state, 'notready');
});

test('a pod parked for the retry is handed over once, and is dropped when the pod is removed', async (t) => {
  const dir = tempDir();
  t.after(() => removeDir(dir));
  const s = new SandboxStore(dir);
  const a = new Sandbox(meta(hex('a'), 'alpha'), { v: 2, state: 'ready', ips: [], network: null, initPid: null });
  s.reserveName(a.meta.nameKey, a.id);
  await s.add(a);
  s.park(a.meta.nameKey, a.id);
  assert.equal(await s.collect(a.meta.nameKey), a.id);
  assert.equal(s.collect(a.meta.nameKey), undefined);
  s.park(a.meta.nameKey, a.id);
  await s.remove(a);
  assert.equal(s.collect(a.meta.nameKey), undefined, 'a removed pod is not handed to a retry');
});

test('a prefix matching two pods is InvalidArgument; an unknown one is undefined', async (t) => {
  const dir = tempDir();
  t.after(() => removeDir(dir));
  const s = new SandboxStore(dir);
  await s.add(new Sandbox(meta(`ab${'0'.repeat(62)}`, 'x'), { v: 2, state: 'ready', ips: [], network: null, initPid: null }));
  await s.add(new Sandbox(meta(`ac${'0'.repeat(62)}`, 'y'), { v: 2, state: 'ready', ips: [], network: null, initPid: null }));
  assert.throws(() => s.resolve('a'), (e: unknown) => e instanceof CricketError && e.code === 'InvalidArgument');
  assert.equal(s.resolve('ab')?.meta.hostname, 'x');
  assert.equal(s.resolve('ff'), undefined);
});

test('hosts and resolv.conf contents', () => {
  const h = hostsContent('web', ['10.0.0.2', 'fd00::2']);
  assert.match(h, /^127\.0\.0\.1\tlocalhost\n/);
  assert.match(h, /\n10\.0\.0\.2\tweb\nfd00::2\tweb\n$/);
  assert.equal(resolvConfContent(undefined), undefined);
  assert.equal(resolvConfContent({ servers: [], searches: [], options: [] }), undefined);
  assert.equal(resolvConfContent({ servers: ['1.1.1.1', '8.8.8.8'], searches: ['a', 'b'], options: ['ndots:2'] }), 'search a b\nnameserver 1.1.1.1\nnameserver 8.8.8.8\noptions ndots:2\n');
});
