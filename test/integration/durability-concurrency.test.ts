import { test } from 'node:test';
import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { CriCallError } from '../../src/client/cri-client.js';
import { ContainerState, PodSandboxState } from '../../src/gen/runtime/v1/api.js';
import { emptyInventory, inventory, setUpDurEnv } from './durability-env.js';

// 50 kubelet pod workers at once: each runs a pod, creates and starts a container.
// Every pod must get its own IP, every container must run, and the records must
// show all of them (no lost update); then 50 concurrent teardowns leave nothing.

const N = 50;

test(`${N} concurrent RunPodSandbox+CreateContainer+StartContainer, then concurrent stop+remove`, { timeout: 300_000 }, async (t) => {
  const env = await setUpDurEnv();
  t.after(() => env.cleanup());
  const c = env.d.client;
  const started = await Promise.all(
    Array.from({ length: N }, async (_, i) => {
      const cfg = env.podConfig(`conc${i}`);
      const pod = (await c.call('RunPodSandbox', { config: cfg })).podSandboxId;
      const ctr = (await c.call('CreateContainer', { podSandboxId: pod, config: env.ctrConfig('sleeper', ['sleep', '3600']), sandboxConfig: cfg })).containerId;
      await c.call('StartContainer', { containerId: ctr });
      return { pod, ctr };
    }),
  );

  const pods = (await c.call('ListPodSandbox', {})).items;
  assert.equal(pods.length, N);
  assert.ok(pods.every((p) => p.state === PodSandboxState.SANDBOX_READY));
  const ips = await Promise.all(started.map(async (s) => (await c.call('PodSandboxStatus', { podSandboxId: s.pod })).status!.network!.ip));
  assert.equal(new Set(ips).size, N, `IPs handed out: ${ips.join(' ')}`);
  for (const ip of ips) assert.ok(ip.startsWith(`${env.net.subnetPrefix}.`), ip);
  const ctrs = (await c.call('ListContainers', { filter: { state: { state: ContainerState.CONTAINER_RUNNING } } })).containers;
  assert.deepEqual(ctrs.map((x) => x.id).sort(), started.map((s) => s.ctr).sort());
  const inv = inventory(env);
  assert.equal(inv.veths.length, N);
  assert.deepEqual(inv.ipamIds.sort(), started.map((s) => s.pod).sort());
  assert.deepEqual(inv.conmonIds.sort(), started.map((s) => s.ctr).sort());

  await Promise.all(
    started.map(async (s) => {
      await c.call('StopContainer', { containerId: s.ctr, timeout: 0n });
      await c.call('RemoveContainer', { containerId: s.ctr });
      await c.call('StopPodSandbox', { podSandboxId: s.pod });
      await c.call('RemovePodSandbox', { podSandboxId: s.pod });
    }),
  );
  assert.deepEqual((await c.call('ListPodSandbox', {})).items, []);
  assert.deepEqual((await c.call('ListContainers', {})).containers, []);
  assert.deepEqual(inventory(env), emptyInventory());
});

test('conflicting RPCs on one pod or container are serialised or refused with a clear error', { timeout: 180_000 }, async (t) => {
  const env = await setUpDurEnv();
  t.after(() => env.cleanup());
  const c = env.d.client;
  const settle = <T>(ps: Promise<T>[]) => Promise.allSettled(ps);
  const reasons = (rs: PromiseSettledResult<unknown>[]) =>
    rs.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => (r.reason as CriCallError));

  // Ten identical RunPodSandbox at once: one pod, the others told the name is taken.
  const cfg = env.podConfig('same');
  const runs = await settle(Array.from({ length: 10 }, () => c.call('RunPodSandbox', { config: cfg })));
  const podIds = new Set(runs.filter((r) => r.status === 'fulfilled').map((r) => (r as PromiseFulfilledResult<{ podSandboxId: string }>).value.podSandboxId));
  assert.equal(podIds.size, 1, 'one pod for one name');
  for (const e of reasons(runs)) {
    assert.ok(e instanceof CriCallError && e.code === status.ALREADY_EXISTS, String(e));
    assert.match(e.message, /reserved/);
  }
  const pod = [...podIds][0]!;
  assert.deepEqual((await c.call('ListPodSandbox', {})).items.map((p) => p.id), [pod]);
  assert.equal(inventory(env).ipamIds.length, 1);

  // Ten StartContainer of one container: it starts once; the rest are refused.
  const ctr = (await c.call('CreateContainer', { podSandboxId: pod, config: env.ctrConfig('one', ['sleep', '3600']), sandboxConfig: cfg })).containerId;
  const starts = await settle(Array.from({ length: 10 }, () => c.call('StartContainer', { containerId: ctr })));
  assert.equal(starts.filter((r) => r.status === 'fulfilled').length, 1);
  for (const e of reasons(starts)) assert.ok(e instanceof CriCallError && e.code === status.FAILED_PRECONDITION, String(e));
  assert.equal((await c.call('ContainerStatus', { containerId: ctr })).status!.state, ContainerState.CONTAINER_RUNNING);
  assert.deepEqual(inventory(env).conmonIds, [ctr]);

  // Stops and removes racing on it, and on the pod: each either succeeds or says why;
  // in the end nothing is left.
  const ops = await settle([
    ...Array.from({ length: 4 }, () => c.call('StopContainer', { containerId: ctr, timeout: 0n })),
    ...Array.from({ length: 4 }, () => c.call('RemoveContainer', { containerId: ctr })),
    c.call('StopPodSandbox', { podSandboxId: pod }),
    c.call('RemovePodSandbox', { podSandboxId: pod }),
  ]);
  t.diagnostic(`racing stop/remove: ${ops.filter((r) => r.status === 'fulfilled').length} succeeded; refused: ${reasons(ops).map((e) => e.message.slice(0, 120)).join(' | ') || 'none'}`);
  for (const e of reasons(ops)) {
    assert.ok(e instanceof CriCallError && e.code !== status.INTERNAL && e.code !== status.UNKNOWN, `unclear failure: ${String(e)}`);
  }
  await c.call('RemovePodSandbox', { podSandboxId: pod });
  assert.deepEqual((await c.call('ListContainers', {})).containers, []);
  assert.deepEqual(inventory(env), emptyInventory());
});
