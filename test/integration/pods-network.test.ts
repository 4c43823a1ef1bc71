import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { randomInt } from 'node:crypto';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { CriCallError } from '../../src/client/cri-client.js';
import { NamespaceMode, PodSandboxState, Protocol } from '../../src/gen/runtime/v1/api.js';
import { REPO_ROOT } from '../helpers/daemon.js';
import { ipamReservations, iptablesMentions, mountsMentioning, serveInNetns, tcpRead, tcpReadFromNetns, vethsOn, waitIpv6Ready } from '../helpers/pod-net.js';
import { notOnRunsc, TEST_HANDLER } from '../helpers/handler.js';
import { assertNothingLeft, info, podConfig, privateNet, run, setUp } from './pods-env.js';

test('pods get IPs on the bridge, reach the host, each other and a hostPort; stop and remove leave nothing', async (t) => {
  const env = await setUp(t);
  const c = env.d.client;
  const hostPort = randomInt(20000, 40000);
  const a = await run(c, podConfig(env, 'alpha', { portMappings: [{ protocol: Protocol.TCP, containerPort: 8080, hostPort }] }));
  const b = await run(c, podConfig(env, 'beta', { dnsConfig: { servers: ['10.0.0.10'], searches: ['svc.local'], options: ['ndots:5'] } }));

  const sa = (await c.call('PodSandboxStatus', { podSandboxId: a })).status!;
  assert.equal(sa.state, PodSandboxState.SANDBOX_READY);
  assert.equal(sa.metadata?.name, 'alpha');
  assert.equal(sa.labels['app'], 'alpha');
  assert.equal(sa.runtimeHandler, TEST_HANDLER);
  assert.equal(sa.linux?.namespaces?.options?.pid, NamespaceMode.CONTAINER);
  const ipA = sa.network!.ip;
  assert.ok(ipA.startsWith(`${env.net.subnetPrefix}.`), `pod IP ${ipA} is in the test subnet`);
  const ia = await info(c, a);
  const ib = await info(c, b);
  const ipB = ib['ips'][0] as string;
  assert.notEqual(ipA, ipB);
  assert.equal(vethsOn(env.net.bridge).length, 2, 'one veth per pod on the bridge');

  // The UTS namespace carries the hostname; hosts and resolv.conf are written for the containers.
  const hn = spawnSync('nsenter', [`--uts=${ia['namespaces'].uts}`, 'cat', '/proc/sys/kernel/hostname'], { encoding: 'utf8' });
  assert.equal(hn.stdout.trim(), 'alpha');
  assert.match(readFileSync(ia['hostsPath'], 'utf8'), new RegExp(`${ipA.replace(/\./g, '\\.')}\\talpha`));
  assert.equal(readFileSync(ib['resolvConfPath'], 'utf8'), 'search svc.local\nnameserver 10.0.0.10\noptions ndots:5\n');
  assert.ok(existsSync(join('/sys/fs/cgroup/memory', ia['cgroupParent'])), 'pod cgroup exists');
  assert.equal(mountsMentioning(`${a}/shm`), 1, '/dev/shm tmpfs mounted');

  const server = await serveInNetns(ia['namespaces'].network, 8080, `hello from alpha`);
  t.after(() => server.kill('SIGKILL'));
  assert.equal(await tcpRead(ipA, 8080), 'hello from alpha', 'host reaches the pod');
  assert.equal(tcpReadFromNetns(ib['namespaces'].network, ipA, 8080), 'hello from alpha', 'pod beta reaches pod alpha');
  assert.equal(await tcpRead(env.net.gateway, hostPort), 'hello from alpha', 'hostPort forwards into the pod via portmap');
  assert.ok(iptablesMentions(a) > 0, 'CNI installed rules for the pod');

  // Filters: label, state, id prefix.
  const byLabel = await c.call('ListPodSandbox', { filter: { labelSelector: { app: 'beta' } } });
  assert.deepEqual(byLabel.items.map((p) => p.id), [b]);
  const byPrefix = await c.call('ListPodSandbox', { filter: { id: a.slice(0, 12) } });
  assert.deepEqual(byPrefix.items.map((p) => p.id), [a]);

  const stats = (await c.call('PodSandboxStats', { podSandboxId: a })).stats!;
  assert.equal(stats.attributes?.id, a);
  assert.equal(stats.linux?.network?.defaultInterface?.name, 'eth0');
  assert.ok(stats.linux!.network!.defaultInterface!.rxBytes!.value > 0n, 'eth0 received bytes');
  assert.ok(stats.linux!.memory!.usageBytes !== undefined);
  const listed = await c.call('ListPodSandboxStats', { filter: { labelSelector: { suite: 'pods' } } });
  assert.deepEqual(listed.stats.map((s) => s.attributes!.id).sort(), [a, b].sort());

  server.kill('SIGKILL');
  await c.call('StopPodSandbox', { podSandboxId: a });
  await c.call('StopPodSandbox', { podSandboxId: a });
  const stopped = (await c.call('PodSandboxStatus', { podSandboxId: a })).status!;
  assert.equal(stopped.state, PodSandboxState.SANDBOX_NOTREADY);
  const notReady = await c.call('ListPodSandbox', { filter: { state: { state: PodSandboxState.SANDBOX_NOTREADY } } });
  assert.deepEqual(notReady.items.map((p) => p.id), [a]);
  assert.equal(iptablesMentions(a), 0, 'Stop released the pod rules');
  assert.equal(vethsOn(env.net.bridge).length, 1, 'Stop removed the veth');

  await c.call('RemovePodSandbox', { podSandboxId: a });
  await c.call('RemovePodSandbox', { podSandboxId: a });
  await assert.rejects(c.call('PodSandboxStatus', { podSandboxId: a }), (e: CriCallError) => e.code === status.NOT_FOUND);
  assertNothingLeft(env, a, { netns: ia['namespaces'].network, cgroup: ia['cgroupParent'] });

  await c.call('RemovePodSandbox', { podSandboxId: b });
  assertNothingLeft(env, b, { netns: ib['namespaces'].network, cgroup: ib['cgroupParent'] });
  assert.deepEqual(vethsOn(env.net.bridge), []);
  assert.deepEqual(ipamReservations(env.net), []);
  // Unknown ids: Stop and Remove succeed, Status is NOT_FOUND.
  const unknown = 'f'.repeat(64);
  await c.call('StopPodSandbox', { podSandboxId: unknown });
  await c.call('RemovePodSandbox', { podSandboxId: unknown });
  await assert.rejects(c.call('PodSandboxStats', { podSandboxId: unknown }), (e: CriCallError) => e.code === status.NOT_FOUND);
});

test('host-network pods skip CNI; a shared PID namespace runs catatonit until Stop', { skip: notOnRunsc('no host IPC; the pod-wide PID namespace is the sandbox\'s, without a host-side catatonit (pods-gvisor.test.ts)') }, async (t) => {
  const env = await setUp(t);
  const c = env.d.client;
  const host = await run(
    c,
    podConfig(env, 'hostnet', {
      hostname: '',
      linux: { securityContext: { namespaceOptions: { network: NamespaceMode.NODE, pid: NamespaceMode.POD, ipc: NamespaceMode.NODE } } },
    }),
  );
  const i = await info(c, host);
  assert.equal(i['namespaces'].network, null);
  assert.equal(i['namespaces'].ipc, null);
  assert.equal(i['shmPath'], null);
  assert.deepEqual(i['ips'], []);
  assert.equal(i['hostname'], (await import('node:os')).hostname());
  assert.deepEqual(vethsOn(env.net.bridge), []);
  const pid = i['pid'] as number;
  assert.ok(pid > 0);
  assert.equal(readFileSync(`/proc/${pid}/comm`, 'utf8').trim(), 'catatonit');
  assert.equal(readFileSync(`/proc/${pid}/cgroup`, 'utf8').includes(i['cgroupParent']), true, 'init is in the pod cgroup');
  // kubelet's -998 for the sandbox, clamped to the daemon's own when it may not go lower.
  const daemonPid = Number(readFileSync(join(env.d.runRoot, 'cricketd.pid'), 'utf8'));
  const own = Number(readFileSync(`/proc/${daemonPid}/oom_score_adj`, 'utf8'));
  const capEff = BigInt(`0x${/^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${daemonPid}/status`, 'utf8'))![1]}`);
  const expectOom = (capEff & (1n << 24n)) !== 0n ? -998 : Math.max(-998, own);
  assert.equal(Number(readFileSync(`/proc/${pid}/oom_score_adj`, 'utf8')), expectOom);
  await c.call('StopPodSandbox', { podSandboxId: host });
  assert.equal(existsSync(`/proc/${pid}`) && readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'catatonit', false, 'init stopped');
  await c.call('RemovePodSandbox', { podSandboxId: host });
  assertNothingLeft(env, host, { cgroup: i['cgroupParent'] });
});

test('the shipped default CNI config (packaging/10-cricket.conflist) works, with private names', { skip: notOnRunsc('CNI config handling is the same for every handler') }, async (t) => {
  const { dir, net, defer } = privateNet(t, { template: join(REPO_ROOT, 'packaging', '10-cricket.conflist') });
  const env = await setUp({ after: defer }, dir, net);
  const c = env.d.client;
  const hostPort = randomInt(20000, 40000);
  const ifbBefore = ifbDevices();
  const id = await run(
    c,
    podConfig(env, 'shipped', {
      portMappings: [{ containerPort: 8080, hostPort }],
      // The bandwidth capability: the plugin shapes the pod's veth (ingress) and an ifb (egress).
      annotations: { 'kubernetes.io/ingress-bandwidth': '10M', 'kubernetes.io/egress-bandwidth': '20M' },
    }),
  );
  const i = await info(c, id);
  const veth = vethsOn(net.bridge)[0]!.split(':')[1]!.trim().split('@')[0]!;
  assert.match(spawnSync('tc', ['qdisc', 'show', 'dev', veth], { encoding: 'utf8' }).stdout, /tbf/, 'ingress shaping on the veth');
  const ifb = ifbDevices().filter((d) => !ifbBefore.includes(d));
  assert.equal(ifb.length, 1, 'an ifb device for egress shaping');
  const server = await serveInNetns(i['namespaces'].network, 8080, 'shipped');
  t.after(() => server.kill('SIGKILL'));
  assert.equal(await tcpRead(i['ips'][0], 8080), 'shipped');
  assert.equal(await tcpRead(net.gateway, hostPort), 'shipped');
  // lo is up inside the pod (we bring it up ourselves; the list has no loopback plugin).
  const lo = spawnSync('nsenter', [`--net=${i['namespaces'].network}`, 'ip', '-o', 'link', 'show', 'lo'], { encoding: 'utf8' });
  assert.match(lo.stdout, /[<,]UP[,>]/);
  server.kill('SIGKILL');
  await c.call('RemovePodSandbox', { podSandboxId: id });
  assertNothingLeft(env, id, { netns: i['namespaces'].network, cgroup: i['cgroupParent'] });
  assert.equal(ifbDevices().includes(ifb[0]!), false, 'the ifb device is gone');
});

function ifbDevices(): string[] {
  return spawnSync('ip', ['-o', 'link', 'show', 'type', 'ifb'], { encoding: 'utf8' })
    .stdout.split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => l.split(':')[1]!.trim())
    .sort();
}

test('a dual-stack network gives the pod an IPv4 and an IPv6 address, IPv4 first', { skip: notOnRunsc('CNI address handling is the same for every handler') }, async (t) => {
  const { dir, net, defer } = privateNet(t, { ipv6: true });
  const env = await setUp({ after: defer }, dir, net);
  const c = env.d.client;
  const id = await run(c, podConfig(env, 'dual'));
  const s = (await c.call('PodSandboxStatus', { podSandboxId: id })).status!;
  assert.ok(s.network!.ip.startsWith(`${net.subnetPrefix}.`), s.network!.ip);
  assert.equal(s.network!.additionalIps.length, 1);
  assert.ok(s.network!.additionalIps[0]!.ip.startsWith(net.ipv6Prefix.replace(/::$/, ':')), s.network!.additionalIps[0]!.ip);
  const i = await info(c, id);
  const server = await serveInNetns(i['namespaces'].network, 8080, 'v6');
  t.after(() => server.kill('SIGKILL'));
  await waitIpv6Ready(net.bridge);
  assert.equal(await tcpRead(s.network!.additionalIps[0]!.ip, 8080), 'v6', 'the host reaches the pod over IPv6');
  server.kill('SIGKILL');
  await c.call('RemovePodSandbox', { podSandboxId: id });
  assertNothingLeft(env, id, { netns: i['namespaces'].network, cgroup: i['cgroupParent'] });
  assert.deepEqual(ipamReservations(net), []);
});
