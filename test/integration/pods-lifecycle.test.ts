import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { randomInt } from 'node:crypto';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { CriCallError } from '../../src/client/cri-client.js';
import { ContainerEventType, NamespaceMode, PodSandboxState, Protocol, type PodSandboxConfig, type DeepPartial } from '../../src/gen/runtime/v1/api.js';
import { removeDir, startDaemon, tempDir, TIMEOUT_SCALE } from '../helpers/daemon.js';
import { wrapCniDir } from '../helpers/failpoint.js';
import { cgroupDir, createdCgroupExists, testCgroupParent } from '../helpers/cgroups.js';
import { ipamReservations, iptablesMentions, mountsMentioning, vethsOn } from '../helpers/pod-net.js';
import { assertNothingLeft, info, podConfig, privateNet, run, setUp } from './pods-env.js';

test('a pod record survives a daemon restart, and Stop/Remove after the restart still tear down CNI', async (t) => {
  const { dir, net, defer } = privateNet(t);
  const first = await setUp({ after: defer }, dir, net);
  const id = await run(first.d.client, podConfig(first, 'survivor', { portMappings: [{ containerPort: 80, hostPort: randomInt(20000, 40000) }] }));
  const before = await info(first.d.client, id);
  // A second pod with a shared PID namespace: its catatonit must outlive the daemon too.
  const shared = await run(
    first.d.client,
    podConfig(first, 'shared-pid', { linux: { securityContext: { namespaceOptions: { network: NamespaceMode.POD, pid: NamespaceMode.POD } } } }),
  );
  const sharedInfo = await info(first.d.client, shared);
  const initPid = sharedInfo['pid'] as number;
  first.d.client.close();
  assert.equal(await first.d.stop(), 0);
  assert.equal(readFileSync(`/proc/${initPid}/comm`, 'utf8').trim(), 'catatonit', 'the pod init outlives the daemon');

  const second = await setUp({ after: defer }, dir, net);
  const c = second.d.client;
  const s = (await c.call('PodSandboxStatus', { podSandboxId: id })).status!;
  assert.equal(s.state, PodSandboxState.SANDBOX_READY);
  assert.equal(s.network?.ip, before['ips'][0]);
  assert.equal((await c.call('ListPodSandbox', {})).items.length, 2);
  assert.equal((await c.call('PodSandboxStatus', { podSandboxId: shared })).status!.state, PodSandboxState.SANDBOX_READY);
  assert.equal((await info(c, shared))['pid'], initPid);
  await c.call('RemovePodSandbox', { podSandboxId: shared });
  assert.equal(existsSync(`/proc/${initPid}`) && readFileSync(`/proc/${initPid}/comm`, 'utf8').trim() === 'catatonit', false, 'Remove after a restart ends the init');
  assertNothingLeft(second, shared, { netns: sharedInfo['namespaces'].network, cgroup: sharedInfo['cgroupParent'] });
  // The name is still reserved after the restart.
  await assert.rejects(run(c, podConfig(second, 'survivor')), (e: CriCallError) => e.code === status.ALREADY_EXISTS && e.details.includes(id));
  assert.ok(iptablesMentions(id) > 0);
  await c.call('StopPodSandbox', { podSandboxId: id });
  assert.equal(iptablesMentions(id), 0);
  assert.deepEqual(ipamReservations(net), []);
  await c.call('RemovePodSandbox', { podSandboxId: id });
  assertNothingLeft(second, id, { netns: before['namespaces'].network, cgroup: before['cgroupParent'] });
  assert.deepEqual(vethsOn(net.bridge), []);
});

test('PodSandboxStatus and ListPodSandbox report the handler as the pod asked for it; the verbose info has the one it runs on', async (t) => {
  const env = await setUp(t);
  const c = env.d.client;
  const hostNet = { linux: { securityContext: { namespaceOptions: { network: NamespaceMode.NODE } } } };
  const asked = async (runtimeHandler: string, name: string) => {
    const { podSandboxId } = await c.call('RunPodSandbox', { config: podConfig(env, name, hostNet), runtimeHandler });
    const st = await c.call('PodSandboxStatus', { podSandboxId, verbose: true });
    const listed = (await c.call('ListPodSandbox', {})).items.find((p) => p.id === podSandboxId);
    const ran = (JSON.parse(st.info['info']!) as { runtimeHandler: string }).runtimeHandler;
    await c.call('StopPodSandbox', { podSandboxId });
    await c.call('RemovePodSandbox', { podSandboxId });
    return [st.status!.runtimeHandler, listed?.runtimeHandler, ran];
  };
  assert.deepEqual(await asked('', 'handler-default'), ['', '', 'runc'], "'' stays '' (containerd reports it so)");
  assert.deepEqual(await asked('runc', 'handler-named'), ['runc', 'runc', 'runc']);
});

test('bad RunPodSandbox input is INVALID_ARGUMENT, FAILED_PRECONDITION or ALREADY_EXISTS and leaves nothing behind', async (t) => {
  const env = await setUp(t);
  const c = env.d.client;
  const invalid = async (config: DeepPartial<PodSandboxConfig> | undefined, re: RegExp, runtimeHandler = '') =>
    assert.rejects(c.call('RunPodSandbox', { config, runtimeHandler }), (e: CriCallError) => {
      assert.equal(e.code, status.INVALID_ARGUMENT, e.message);
      assert.match(e.details, re);
      return true;
    });
  const good = podConfig(env, 'good');
  await invalid({ ...good, metadata: undefined }, /metadata/);
  await invalid({ ...good, metadata: { name: '', namespace: 'n', uid: 'u' } }, /name must not be empty/);
  await invalid({ ...good, metadata: { name: 'a/b', namespace: 'n', uid: 'u' } }, /must not contain/);
  await invalid({ ...good, metadata: { name: 'x', namespace: '..', uid: 'u' } }, /must not contain/);
  await invalid({ ...good, metadata: { name: 'x'.repeat(300), namespace: 'n', uid: 'u' } }, /at most 253/);
  await invalid({ ...good, logDirectory: '/etc/evil' }, /outside the allowed log roots/);
  await invalid({ ...good, logDirectory: `${env.logs}/../x` }, /must not contain/);
  await invalid({ ...good, portMappings: [{ containerPort: 70000, hostPort: 1 }] }, /container_port 70000/);
  await invalid({ ...good, portMappings: [{ containerPort: 80, hostPort: -1 }] }, /host_port/);
  await invalid({ ...good, portMappings: [{ containerPort: 80, hostPort: 30000, protocol: 7 as Protocol }] }, /protocol/);
  await invalid(
    { ...good, portMappings: [{ containerPort: 80, hostPort: 30001 }, { containerPort: 81, hostPort: 30001 }] },
    /mapped twice/,
  );
  await invalid({ ...good, linux: { sysctls: { 'kernel.hostname': 'x' } } }, /not namespaced/);
  await invalid(good, /known handlers: runc/, 'no-such-handler');

  // With no usable CNI config, a pod that needs a network is refused up front.
  const noNet = tempDir('cricket-nocni-');
  t.after(() => removeDir(noNet));
  const bare = await startDaemon({ args: ['--cni-conf-dir', noNet], configToml: `[logs]\nallowed_roots = [${JSON.stringify(env.logs)}]\n` });
  t.after(() => bare.cleanup());
  await assert.rejects(bare.client.call('RunPodSandbox', { config: good }), (e: CriCallError) => {
    return e.code === status.FAILED_PRECONDITION && /pod network is not ready: no valid CNI network config/.test(e.details);
  });
  assert.deepEqual(existsSync(join(bare.runRoot, 'pods')) ? readdirSync(join(bare.runRoot, 'pods')) : [], []);
  // Nothing was created by any of those.
  assert.deepEqual((await c.call('ListPodSandbox', {})).items, []);
  const podsRun = join(env.d.runRoot, 'pods');
  assert.deepEqual(existsSync(podsRun) ? readdirSync(podsRun) : [], []);
  assert.equal(existsSync(join(env.logs, 'pods-test_good_uid-good')), false);

  // A duplicate name names its holder; a host port held by another pod is refused.
  const hostPort = randomInt(20000, 40000);
  const id = await run(c, { ...good, portMappings: [{ containerPort: 80, hostPort }] });
  await assert.rejects(run(c, good), (e: CriCallError) => e.code === status.ALREADY_EXISTS && e.details.includes(id));
  await assert.rejects(
    run(c, podConfig(env, 'other', { portMappings: [{ containerPort: 81, hostPort }] })),
    (e: CriCallError) => e.code === status.FAILED_PRECONDITION && e.details.includes(id),
  );
  assert.equal((await c.call('ListPodSandbox', {})).items.length, 1);
  // Once the holder is stopped its port is free again.
  await c.call('StopPodSandbox', { podSandboxId: id });
  const other = await run(c, podConfig(env, 'other', { portMappings: [{ containerPort: 81, hostPort }] }));
  await c.call('RemovePodSandbox', { podSandboxId: other });
  await c.call('RemovePodSandbox', { podSandboxId: id });
  assert.deepEqual(existsSync(podsRun) ? readdirSync(podsRun) : [], []);
});

test('a CNI plugin failing mid-ADD (or hanging past the deadline) rolls RunPodSandbox back completely', async (t) => {
  const { dir, net, defer } = privateNet(t);
  const fp = wrapCniDir(dir, '/usr/lib/cni');
  // A short plugin timeout: RunPodSandbox outlives its caller's deadline until then.
  const env = await setUp({ after: defer }, dir, net, ['--cni-bin-dir', fp.dir], `[network]\nplugin_timeout_seconds = ${3 * TIMEOUT_SCALE}\n`);
  const c = env.d.client;
  const podsRun = join(env.d.runRoot, 'pods');
  const nothingLeft = () => {
    assert.deepEqual(existsSync(podsRun) ? readdirSync(podsRun) : [], [], 'no pod run dir');
    assert.equal(mountsMentioning(env.d.runRoot), 0, 'no namespace or shm mount');
    assert.deepEqual(vethsOn(net.bridge), [], 'no veth');
    assert.deepEqual(ipamReservations(net), [], 'no IPAM reservation');
    assert.equal(iptablesMentions(net.name), 0, 'no iptables rule');
    assert.equal(existsSync(cgroupDir('memory', parent.path)), false, 'no pod cgroup');
  };
  // A cgroup parent of this test's own (the default /cricket is shared with other daemons).
  const parent = testCgroupParent(`${net.bridge}test`, 'pod_doomed');
  t.after(() => parent.cleanup());
  const cgroupParent = parent.cri;
  const doomed = (extra: DeepPartial<PodSandboxConfig> = {}) =>
    podConfig(env, 'doomed', { linux: { cgroupParent, securityContext: { namespaceOptions: { pid: NamespaceMode.CONTAINER } } }, ...extra });

  // portmap fails after bridge has already made the veth, the IP and the masquerade rules.
  fp.arm('portmap', 'ADD', 'fail');
  await assert.rejects(
    run(c, doomed({ portMappings: [{ containerPort: 80, hostPort: randomInt(20000, 40000) }] })),
    (e: CriCallError) => e.code === status.INTERNAL && /portmap ADD failed/.test(e.details),
  );
  nothingLeft();
  assert.deepEqual((await c.call('ListPodSandbox', {})).items, []);

  // The bridge plugin hangs: the deadline ends the call; the plugin timeout ends the
  // plugin, and the rollback still runs.
  fp.disarm('portmap');
  fp.arm('bridge', 'ADD', 'hang');
  await assert.rejects(
    c.call('RunPodSandbox', { config: doomed() }, { timeoutMs: 1500 }),
    (e: CriCallError) => e.code === status.DEADLINE_EXCEEDED,
  );
  fp.disarm('bridge');
  for (let i = 0; i < 100 * TIMEOUT_SCALE && existsSync(podsRun) && readdirSync(podsRun).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
  nothingLeft();

  // The name was released: the same pod now starts.
  const id = await run(c, doomed());
  assert.ok(existsSync(cgroupDir('memory', parent.path)), 'the pod cgroup is made under the given parent');
  await c.call('RemovePodSandbox', { podSandboxId: id });
  nothingLeft();
});

test('after a crash in the middle of RunPodSandbox, the restarted daemon releases what was left', async (t) => {
  const { dir, net, defer } = privateNet(t);
  const fp = wrapCniDir(dir, '/usr/lib/cni');
  const first = await setUp({ after: defer }, dir, net, ['--cni-bin-dir', fp.dir]);
  const podsRun = join(first.d.runRoot, 'pods');
  // portmap hangs: bridge has made the veth, IP and rules, the pod dir holds pins and shm.
  fp.arm('portmap', 'ADD', 'hang');
  const pending = first.d.client
    .call('RunPodSandbox', { config: podConfig(first, 'crashy', { portMappings: [{ containerPort: 80, hostPort: randomInt(20000, 40000) }] }) })
    .catch((e: unknown) => e);
  let id = '';
  let hung: number | undefined;
  for (let i = 0; i < 200 && hung === undefined; i++) {
    await new Promise((r) => setTimeout(r, 50));
    id = existsSync(podsRun) ? (readdirSync(podsRun)[0] ?? '') : '';
    hung = id ? pluginWaitingFor(id) : undefined;
  }
  assert.ok(hung !== undefined, 'portmap ADD is hanging');
  assert.equal(vethsOn(net.bridge).length, 1);
  assert.equal(ipamReservations(net).length, 1);
  const cgroup = JSON.parse(readFileSync(join(podsRun, id, 'cgroups.json'), 'utf8')) as string[];
  assert.ok(cgroup.some((d) => d.includes(id)));

  // Crash: the daemon dies, and so does the hung plugin it had started.
  const pid = Number(readFileSync(join(first.d.runRoot, 'cricketd.pid'), 'utf8'));
  process.kill(pid, 'SIGKILL');
  process.kill(hung!, 'SIGKILL');
  await new Promise((r) => first.d.child.once('exit', r));
  await pending;
  first.d.client.close();
  fp.disarm('portmap');

  const second = await setUp({ after: defer }, dir, net, ['--cni-bin-dir', fp.dir]);
  assert.deepEqual((await second.d.client.call('ListPodSandbox', {})).items, []);
  assert.deepEqual(existsSync(podsRun) ? readdirSync(podsRun) : [], []);
  assert.equal(mountsMentioning(id), 0);
  assert.deepEqual(vethsOn(net.bridge), []);
  assert.deepEqual(ipamReservations(net), []);
  assert.equal(iptablesMentions(id), 0);
  for (const d of cgroup) if (d.includes(id)) assert.equal(createdCgroupExists(d), false, `${d} removed`);
  // The name was never recorded, so it is free.
  const again = await run(second.d.client, podConfig(second, 'crashy'));
  await second.d.client.call('RemovePodSandbox', { podSandboxId: again });
});

/** The pid of a failpoint-hung CNI plugin working for pod `id` (found through its environment). */

function pluginWaitingFor(id: string): number | undefined {
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const env = readFileSync(`/proc/${p}/environ`, 'utf8').split('\0');
      if (env.includes(`CNI_CONTAINERID=${id}`) && env.includes('CNI_COMMAND=ADD') && readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'sleep') return Number(p);
    } catch {
      // gone
    }
  }
  return undefined;
}

test('sandbox lifecycle events reach GetContainerEvents with the pod status', async (t) => {
  const env = await setUp(t);
  const c = env.d.client;
  const events: { id: string; type: number; state: number | undefined }[] = [];
  const ac = new AbortController();
  const reading = (async () => {
    try {
      for await (const ev of c.stream('GetContainerEvents', {}, { signal: ac.signal })) {
        events.push({ id: ev.containerId, type: ev.containerEventType, state: ev.podSandboxStatus?.state });
      }
    } catch {
      // cancelled at the end
    }
  })();
  t.after(() => ac.abort());
  await new Promise((r) => setTimeout(r, 200));
  const id = await run(c, podConfig(env, 'evented'));
  await c.call('StopPodSandbox', { podSandboxId: id });
  await c.call('StopPodSandbox', { podSandboxId: id });
  await c.call('RemovePodSandbox', { podSandboxId: id });
  for (let i = 0; i < 50 && events.filter((e) => e.id === id).length < 4; i++) await new Promise((r) => setTimeout(r, 50));
  ac.abort();
  await reading;
  assert.deepEqual(
    events.filter((e) => e.id === id).map((e) => [e.type, e.state]),
    [
      [ContainerEventType.CONTAINER_CREATED_EVENT, PodSandboxState.SANDBOX_READY],
      [ContainerEventType.CONTAINER_STARTED_EVENT, PodSandboxState.SANDBOX_READY],
      [ContainerEventType.CONTAINER_STOPPED_EVENT, PodSandboxState.SANDBOX_NOTREADY],
      [ContainerEventType.CONTAINER_DELETED_EVENT, PodSandboxState.SANDBOX_NOTREADY],
    ],
  );
});

test('a pod that finishes after the caller\'s deadline is kept and handed to the retry', async (t) => {
  const { dir, net, defer } = privateNet(t);
  // Every real plugin, except that portmap ADD takes 2 s.
  const bin = join(dir, 'slow-cni');
  mkdirSync(bin);
  for (const p of readdirSync('/usr/lib/cni')) symlinkSync(join('/usr/lib/cni', p), join(bin, p));
  rmSync(join(bin, 'portmap'));
  writeFileSync(join(bin, 'portmap'), '#!/bin/sh\n[ "$CNI_COMMAND" = ADD ] && sleep 2\nexec /usr/lib/cni/portmap "$@"\n', { mode: 0o755 });
  const env = await setUp({ after: defer }, dir, net, ['--cni-bin-dir', bin]);
  const c = env.d.client;
  const config = podConfig(env, 'slowpoke', { portMappings: [{ containerPort: 80, hostPort: randomInt(20000, 40000) }] });
  await assert.rejects(c.call('RunPodSandbox', { config }, { timeoutMs: 700 }), (e: CriCallError) => e.code === status.DEADLINE_EXCEEDED);
  let items: { id: string; state: PodSandboxState }[] = [];
  for (let i = 0; i < 100 && items.length === 0; i++) {
    await new Promise((r) => setTimeout(r, 100));
    items = (await c.call('ListPodSandbox', {})).items;
  }
  assert.equal(items.length, 1, 'the pod was finished, not undone');
  assert.equal(items[0]!.state, PodSandboxState.SANDBOX_READY);
  const retry = await c.call('RunPodSandbox', { config });
  assert.equal(retry.podSandboxId, items[0]!.id, 'the retry gets the finished pod');
  // Handed over once: a further identical request is a duplicate again.
  await assert.rejects(c.call('RunPodSandbox', { config }), (e: CriCallError) => e.code === status.ALREADY_EXISTS);
  await c.call('RemovePodSandbox', { podSandboxId: retry.podSandboxId });
  assertNothingLeft(env, retry.podSandboxId, {});
  assert.deepEqual(vethsOn(net.bridge), []);
});

test('StreamPodSandboxes, StreamPodSandboxStats and UpdatePodSandboxResources', async (t) => {
  const { dir, net, defer } = privateNet(t);
  const env = await setUp({ after: defer }, dir, net);
  const c = env.d.client;
  const a = await run(c, podConfig(env, 'streamed-a'));
  const b = await run(c, podConfig(env, 'streamed-b'));
  await c.call('StopPodSandbox', { podSandboxId: b });
  const seen: string[] = [];
  for await (const r of c.stream('StreamPodSandboxes', { filter: { labelSelector: { suite: 'pods' } } })) seen.push(...r.podSandboxes.map((p) => p.id));
  assert.deepEqual(seen.sort(), [a, b].sort());
  const ready: string[] = [];
  for await (const r of c.stream('StreamPodSandboxes', { filter: { state: { state: PodSandboxState.SANDBOX_READY } } })) ready.push(...r.podSandboxes.map((p) => p.id));
  assert.deepEqual(ready, [a]);
  const stats: string[] = [];
  for await (const r of c.stream('StreamPodSandboxStats', {})) stats.push(...r.podSandboxStats.map((s) => s.attributes!.id));
  assert.deepEqual(stats, [a], 'stats are for running pods');

  await c.call('UpdatePodSandboxResources', { podSandboxId: a, resources: { cpuShares: 512n, memoryLimitInBytes: 1n << 28n } });
  const i = await info(c, a);
  assert.equal(i['resources'].cpuShares, '512');
  assert.equal(i['resources'].memoryLimitInBytes, String(1 << 28));
  await assert.rejects(
    c.call('UpdatePodSandboxResources', { podSandboxId: 'e'.repeat(64), resources: {} }),
    (e: CriCallError) => e.code === status.NOT_FOUND,
  );
  // The record keeps them across a restart of the daemon.
  c.close();
  await env.d.stop();
  const again = await setUp({ after: defer }, dir, net);
  assert.equal((await info(again.d.client, a))['resources'].cpuShares, '512');
});
