import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { PodSandboxState } from '../../src/gen/runtime/v1/api.js';
import { emptyInventory, inventory, setUpDurEnv } from './durability-env.js';

// StopPodSandbox marks the pod NOTREADY before it tears anything down. Here the daemon
// dies right after the bridge plugin's DEL, before it could forget the CNI result: the
// restart must report the pod NOTREADY (its network is gone) and finish the teardown,
// not list a READY pod with no network.

test('a daemon killed right after CNI DEL in StopPodSandbox comes back with the pod NOTREADY and its network released', { timeout: 180_000 }, async (t) => {
  const env = await setUpDurEnv();
  t.after(() => env.cleanup());
  const c = () => env.d.client;
  const cfg = env.podConfig('stopcut');
  const pod = (await c().call('RunPodSandbox', { config: cfg })).podSandboxId;
  const ctr = (await c().call('CreateContainer', { podSandboxId: pod, config: env.ctrConfig('sleeper', ['sleep', '3600']), sandboxConfig: cfg }))
    .containerId;
  await c().call('StartContainer', { containerId: ctr });
  assert.ok(inventory(env).ipamIds.includes(pod), 'the pod holds an IP');

  env.cni.arm('bridge', 'DEL', `kill-after:${join(env.d.runRoot, 'cricketd.pid')}`);
  await assert.rejects(c().call('StopPodSandbox', { podSandboxId: pod }, { timeoutMs: 60_000 }));
  await env.kill();
  env.cni.disarm('bridge');
  await env.restart();

  const s = await c().call('PodSandboxStatus', { podSandboxId: pod });
  assert.equal(s.status!.state, PodSandboxState.SANDBOX_NOTREADY);
  const inv = inventory(env);
  assert.deepEqual(inv.ipamIds, [], 'the IP is released');
  assert.deepEqual(inv.veths, [], 'no veth is left on the bridge');
  assert.ok(!inv.iptablesIds.includes(pod), 'no iptables rule names the pod');
  assert.deepEqual(inv.cniCacheIds, [], 'the CNI result is forgotten once DEL is done');

  // kubelet's own Stop and Remove then finish the pod as usual.
  await c().call('StopPodSandbox', { podSandboxId: pod });
  await c().call('RemovePodSandbox', { podSandboxId: pod });
  assert.deepEqual(inventory(env), emptyInventory());
});
