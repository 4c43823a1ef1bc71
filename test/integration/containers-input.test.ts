import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, renameSync, symlinkSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { ContainerState, SecurityProfile_ProfileType } from '../../src/gen/runtime/v1/api.js';
import { mountsMentioning } from '../helpers/pod-net.js';
import { cgroupDir, containerLeaf, cpuSharesOf, memoryLimitOf } from '../helpers/cgroups.js';
import { cgroupFsPath } from '../../src/host/cgroups.js';
import { create, createStart, ctrConfig, isCode, leftovers, runPod, setUpEnv, waitState, type Env } from './containers-env.js';
import { startDaemon } from '../helpers/daemon.js';

let env: Env;
before(async () => {
  env = await setUpEnv();
});
after(async () => {
  await env?.cleanup();
});

test('bad CreateContainer input is refused with the right code and leaves nothing behind', async () => {
  const pod = await runPod(env);
  const c = env.d.client;
  const base = () => ctrConfig(env, ['true'], { metadata: { name: 'same', attempt: 0 } });
  const cases: [string, () => Promise<unknown>, status][] = [
    ['unknown pod', () => c.call('CreateContainer', { podSandboxId: 'a'.repeat(64), config: base() }), status.NOT_FOUND],
    ['image not present', () => c.call('CreateContainer', { podSandboxId: pod.id, config: { ...base(), image: { image: 'nowhere.invalid/none:1' } } }), status.NOT_FOUND],
    ['no metadata', () => c.call('CreateContainer', { podSandboxId: pod.id, config: { ...base(), metadata: undefined } }), status.INVALID_ARGUMENT],
    [
      'missing mount path',
      () => c.call('CreateContainer', { podSandboxId: pod.id, config: { ...base(), mounts: [{ containerPath: '/data', hostPath: join(env.dir, 'absent') }] } }),
      status.INVALID_ARGUMENT,
    ],
    [
      'relative container path',
      () => c.call('CreateContainer', { podSandboxId: pod.id, config: { ...base(), mounts: [{ containerPath: 'data', hostPath: env.dir }] } }),
      status.INVALID_ARGUMENT,
    ],
    [
      'unknown run_as_username',
      () => c.call('CreateContainer', { podSandboxId: pod.id, config: { ...base(), linux: { securityContext: { runAsUsername: 'ghost' } } } }),
      status.INVALID_ARGUMENT,
    ],
    [
      'bad seccomp path',
      () => c.call('CreateContainer', {
        podSandboxId: pod.id,
        config: { ...base(), linux: { securityContext: { seccomp: { profileType: SecurityProfile_ProfileType.Localhost, localhostRef: join(env.dir, 'none.json') } } } },
      }),
      status.INVALID_ARGUMENT,
    ],
    [
      'negative memory',
      () => c.call('CreateContainer', { podSandboxId: pod.id, config: { ...base(), linux: { resources: { memoryLimitInBytes: -5n } } } }),
      status.INVALID_ARGUMENT,
    ],
    [
      'absurd cpu shares',
      () => c.call('CreateContainer', { podSandboxId: pod.id, config: { ...base(), linux: { resources: { cpuShares: 1n << 40n } } } }),
      status.INVALID_ARGUMENT,
    ],
    [
      'oom_score_adj out of range',
      () => c.call('CreateContainer', { podSandboxId: pod.id, config: { ...base(), linux: { resources: { oomScoreAdj: 5000n } } } }),
      status.INVALID_ARGUMENT,
    ],
    [
      'oversized env',
      () => c.call('CreateContainer', { podSandboxId: pod.id, config: { ...base(), envs: [{ key: 'BIG', value: Buffer.alloc(2 << 20, 97) }] } }),
      status.INVALID_ARGUMENT,
    ],
    ['unknown capability', () => c.call('CreateContainer', { podSandboxId: pod.id, config: { ...base(), linux: { securityContext: { capabilities: { addCapabilities: ['FLY'] } } } } }), status.INVALID_ARGUMENT],
    ['device that is not a device', () => c.call('CreateContainer', { podSandboxId: pod.id, config: { ...base(), devices: [{ containerPath: '/dev/x', hostPath: env.dir, permissions: 'rw' }] } }), status.INVALID_ARGUMENT],
    ['log path escaping', () => c.call('CreateContainer', { podSandboxId: pod.id, config: { ...base(), logPath: '../../etc/x.log' } }), status.INVALID_ARGUMENT],
  ];
  // A symlink inside the log directory that points out of it.
  const logDir = pod.config.logDirectory!;
  mkdirSync(logDir, { recursive: true });
  symlinkSync(env.dir, join(logDir, 'escape'));
  cases.push(['log path through a symlink', () => c.call('CreateContainer', { podSandboxId: pod.id, config: { ...base(), logPath: 'escape/x.log' } }), status.INVALID_ARGUMENT]);
  cases.push(['log path through a symlink, deeper', () => c.call('CreateContainer', { podSandboxId: pod.id, config: { ...base(), logPath: 'escape/made/x.log' } }), status.INVALID_ARGUMENT]);
  const badProfile = join(env.dir, 'bad-profile.json');
  writeFileSync(badProfile, '{ not json');
  cases.push([
    'unparsable seccomp profile',
    () => c.call('CreateContainer', { podSandboxId: pod.id, config: { ...base(), linux: { securityContext: { seccompProfilePath: `localhost/${badProfile}` } } } }),
    status.INVALID_ARGUMENT,
  ]);
  for (const [what, p, code] of cases) {
    await assert.rejects(p(), (e: Error & { code?: number; details?: string }) => {
      assert.equal(e.code, code, `${what}: ${e.message}`);
      assert.ok((e.details ?? '').length > 10, `${what}: a message a person can act on`);
      return true;
    });
  }
  assert.deepEqual(await leftovers(env), []);
  assert.equal(existsSync(join(env.dir, 'made')), false, 'nothing was created through the escaping symlink');
  assert.equal(mountsMentioning(join(env.d.runRoot, 'containers')), 0, 'no rootfs mount left');
  // The name was never kept: the same name/attempt now works, then is a duplicate.
  const id = await create(env, pod, base());
  await assert.rejects(create(env, pod, base()), (e: Error & { code?: number; details?: string }) => e.code === status.ALREADY_EXISTS && e.details!.includes(id));

  // A stopped pod takes no new containers.
  await c.call('StopPodSandbox', { podSandboxId: pod.id });
  await assert.rejects(create(env, pod, ctrConfig(env, ['true'])), isCode(status.FAILED_PRECONDITION));
  await c.call('RemovePodSandbox', { podSandboxId: pod.id });
  assert.deepEqual(await leftovers(env), []);
});

test('a create whose caller gave up is kept for the retry with the same name and attempt', async () => {
  const pod = await runPod(env);
  const cfg = ctrConfig(env, ['sleep', '1000']);
  await assert.rejects(
    env.d.client.call('CreateContainer', { podSandboxId: pod.id, config: cfg, sandboxConfig: pod.config }, { timeoutMs: 10 }),
    isCode(status.DEADLINE_EXCEEDED),
  );
  const { containerId } = await env.d.client.call('CreateContainer', { podSandboxId: pod.id, config: cfg, sandboxConfig: pod.config });
  assert.match(env.d.output(), /kept for its retry/, 'the first call reached the daemon and was parked');
  const mine = (await env.d.client.call('ListContainers', { filter: { podSandboxId: pod.id } })).containers;
  assert.deepEqual(mine.map((c) => c.id), [containerId]);
  await env.d.client.call('StartContainer', { containerId });
  await waitState(env, containerId, ContainerState.CONTAINER_RUNNING);
  await env.d.client.call('StopPodSandbox', { podSandboxId: pod.id });
  await env.d.client.call('RemovePodSandbox', { podSandboxId: pod.id });
  assert.deepEqual(await leftovers(env), []);
});

test('UpdateContainerResources, ReopenContainerLog and stats work on a running container', async () => {
  const pod = await runPod(env);
  const c = env.d.client;
  const id = await createStart(env, pod, ctrConfig(env, ['sh', '-c', 'i=0; while true; do echo line $i; i=$((i+1)); sleep 0.05; done'], { labels: { k: 'v' } }));
  await waitState(env, id, ContainerState.CONTAINER_RUNNING);
  const st = (await c.call('ContainerStatus', { containerId: id, verbose: true }));
  const info = JSON.parse(st.info['info']!);
  assert.ok(info.pid > 0);
  assert.equal(info.runtimeSpec.process.args[0], 'sh');
  const cg = info.cgroupsPath as string;
  assert.ok(cgroupFsPath(cg).endsWith(`/${containerLeaf(id)}`), 'the cgroup leaf is named by the container id');

  await c.call('UpdateContainerResources', { containerId: id, linux: { memoryLimitInBytes: 64n << 20n, cpuShares: 512n } });
  assert.equal(memoryLimitOf(cg), String(64 << 20));
  const shares = cpuSharesOf(cg);
  assert.equal(shares.value, shares.expectFor(512), shares.file);
  const after = (await c.call('ContainerStatus', { containerId: id })).status!;
  assert.equal(after.resources?.linux?.memoryLimitInBytes, 64n << 20n);
  await assert.rejects(c.call('UpdateContainerResources', { containerId: id, linux: { cpuPeriod: 5n } }), isCode(status.INVALID_ARGUMENT));

  // kubelet's rotation: rename the file, then ask for a reopen; new lines go to a new file.
  const logPath = after.logPath;
  renameSync(logPath, `${logPath}.1`);
  await c.call('ReopenContainerLog', { containerId: id });
  for (let i = 0; i < 100 && !(existsSync(logPath) && readFileSync(logPath, 'utf8').includes('line')); i++) await new Promise((r) => setTimeout(r, 50));
  assert.match(readFileSync(logPath, 'utf8'), /stdout F line \d+/);

  const stats = (await c.call('ContainerStats', { containerId: id })).stats!;
  assert.equal(stats.attributes?.id, id);
  assert.ok(stats.cpu!.usageCoreNanoSeconds!.value > 0n);
  assert.ok(stats.memory!.workingSetBytes!.value > 0n);
  assert.ok(stats.writableLayer!.inodesUsed !== undefined);
  // Pressure stall information where the kernel keeps it per cgroup (v2 with PSI on).
  if (existsSync(join(cgroupDir('cpu', cg), 'cpu.pressure'))) {
    assert.ok(stats.cpu!.psi?.Some !== undefined && stats.memory!.psi?.Full !== undefined, 'PSI in the stats');
  }
  const listed = (await c.call('ListContainerStats', { filter: { labelSelector: { k: 'v' } } })).stats;
  assert.deepEqual(listed.map((s) => s.attributes?.id), [id]);
  const streamed: string[] = [];
  for await (const m of c.stream('StreamContainerStats', { filter: { labelSelector: { k: 'v' } } })) streamed.push(...m.containerStats.map((x) => x.attributes!.id));
  assert.deepEqual(streamed, [id]);
  const streamedCtrs: string[] = [];
  for await (const m of c.stream('StreamContainers', { filter: { podSandboxId: pod.id } })) streamedCtrs.push(...m.containers.map((x) => x.id));
  assert.deepEqual(streamedCtrs, [id]);
  const descriptors = (await c.call('ListMetricDescriptors', {})).descriptors;
  assert.ok(descriptors.some((d) => d.name === 'container_memory_working_set_bytes'));
  const podStats = (await c.call('PodSandboxStats', { podSandboxId: pod.id })).stats!;
  assert.deepEqual(podStats.linux?.containers.map((s) => s.attributes?.id), [id]);
  // The pod's own cgroup counts its containers (on v2 only once its parent delegates memory and cpu to it).
  assert.ok((podStats.linux?.memory?.workingSetBytes?.value ?? 0n) > 0n, 'pod working set');
  assert.ok((podStats.linux?.cpu?.usageCoreNanoSeconds?.value ?? 0n) > 0n, 'pod CPU time');
  const metrics = (await c.call('ListPodSandboxMetrics', {})).podMetrics.find((m) => m.podSandboxId === pod.id)!;
  assert.equal(metrics.containerMetrics[0]!.containerId, id);

  await c.call('StopContainer', { containerId: id, timeout: 0n });
  await assert.rejects(c.call('ReopenContainerLog', { containerId: id }), isCode(status.FAILED_PRECONDITION));
  await c.call('StopPodSandbox', { podSandboxId: pod.id });
  await c.call('RemovePodSandbox', { podSandboxId: pod.id });
});

test('containers survive a daemon restart; an exit while the daemon is down is noticed', async () => {
  const pod = await runPod(env);
  const long = await createStart(env, pod, ctrConfig(env, ['sleep', '1000']));
  const short = await createStart(env, pod, ctrConfig(env, ['sh', '-c', 'sleep 2; exit 5']));
  await waitState(env, long, ContainerState.CONTAINER_RUNNING);
  await env.d.stop();
  await new Promise((r) => setTimeout(r, 3000));
  const d2 = await startDaemon({ dir: env.d.dir, configToml: readFileSync(join(env.d.dir, 'cricket.toml'), 'utf8') });
  env.d = d2;
  const s1 = (await d2.client.call('ContainerStatus', { containerId: long })).status!;
  assert.equal(s1.state, ContainerState.CONTAINER_RUNNING);
  const s2 = (await d2.client.call('ContainerStatus', { containerId: short })).status!;
  assert.equal(s2.state, ContainerState.CONTAINER_EXITED);
  assert.equal(s2.exitCode, 5);
  // The exit watcher works after a restart too.
  await d2.client.call('StopContainer', { containerId: long, timeout: 0n });
  assert.equal((await d2.client.call('ContainerStatus', { containerId: long })).status!.exitCode, 137);
  await assert.rejects(create(env, pod, ctrConfig(env, ['true'], { metadata: { name: (await d2.client.call('ContainerStatus', { containerId: long })).status!.metadata!.name, attempt: 0 } })), isCode(status.ALREADY_EXISTS));
  await d2.client.call('StopPodSandbox', { podSandboxId: pod.id });
  await d2.client.call('RemovePodSandbox', { podSandboxId: pod.id });
  assert.deepEqual(await leftovers(env), []);
  assert.equal(readdirSync(join(env.d.runRoot, 'containers', 'exits')).length, 0);
});
