import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CricketError } from '../../src/core/errors.js';
import { PodSandboxConfig } from '../../src/gen/runtime/v1/api.js';
import { hostsContent, resolvConfContent } from '../../src/services/pods/pod-files.js';
import { filterSandboxes } from '../../src/services/pods/list-pod-sandbox.js';
import { Sandbox, SandboxStore, type SandboxMeta } from '../../src/services/pods/sandbox-store.js';
import { removeDir, tempDir } from '../helpers/daemon.js';

function meta(id: string, name: string, labels: Record<string, string> = {}): SandboxMeta {
  const config = PodSandboxConfig.fromPartial({
    metadata: { name, namespace: 'ns', uid: 'u', attempt: 0 },
    labels,
    linux: { securityContext: { runAsUser: { value: 1000n } }, resources: { memoryLimitInBytes: 1n << 40n } },
  });
  return {
    v: 1,
    id,
    nameKey: `${name}_ns_u_0`,
    config: PodSandboxConfig.toJSON(config),
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
  const a = new Sandbox(meta(hex('a'), 'alpha', { app: 'x' }), { v: 1, state: 'ready', ips: ['10.0.0.2'], network: 'n', initPid: null });
  const b = new Sandbox(meta(hex('b'), 'beta'), { v: 1, state: 'notready', ips: [], network: null, initPid: null });
  await s.persistNew(a);
  await s.persistNew(b);

  const again = new SandboxStore(dir);
  const { loaded, problems } = await again.load();
  assert.deepEqual(problems, []);
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

  await again.forget(ra);
  const third = new SandboxStore(dir);
  assert.equal((await third.load()).loaded.length, 1);
  third.reserveName('alpha_ns_u_0', hex('c'));
});

test('a prefix matching two pods is InvalidArgument; an unknown one is undefined', () => {
  const s = new SandboxStore('/nonexistent/cricket-store');
  s.add(new Sandbox(meta(`ab${'0'.repeat(62)}`, 'x'), { v: 1, state: 'ready', ips: [], network: null, initPid: null }));
  s.add(new Sandbox(meta(`ac${'0'.repeat(62)}`, 'y'), { v: 1, state: 'ready', ips: [], network: null, initPid: null }));
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
