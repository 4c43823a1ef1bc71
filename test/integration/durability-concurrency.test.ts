import { test } from 'node:test';
import assert from 'node:assert/strict';
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
