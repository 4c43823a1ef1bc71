import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { PodSandboxState } from '../../src/gen/runtime/v1/api.js';
import { emptyInventory, inventory, setUpDurEnv } from './durability-env.js';

// Each resource has two records, meta and status, written one after the other (meta
// first on create, status first on removal). A crash between the two leaves a meta
// alone. The random kill loop hits that window only rarely, so it is made here by
// hand: SIGKILL the daemon, delete the status record, restart.

test('a meta record without its status (crash between the two writes) is reconciled, not left behind', { timeout: 180_000 }, async (t) => {
  const env = await setUpDurEnv();
  t.after(() => env.cleanup());
  const c = () => env.d.client;
  const root = join(env.daemonDir, 'root');

  const cfg = env.podConfig('half');
  const pod = (await c().call('RunPodSandbox', { config: cfg })).podSandboxId;
  const mk = async (name: string) =>
    (await c().call('CreateContainer', { podSandboxId: pod, config: env.ctrConfig(name, ['sleep', '3600']), sandboxConfig: cfg })).containerId;
  // A running container whose status record is lost: as if its CreateContainer had
  // been cut after the meta write (the caller never got it), with conmon and runc up.
  const cut = await mk('cut');
  await c().call('StartContainer', { containerId: cut });
  // A container whose removal was cut after the status delete.
  const gone = await mk('gone');
  const keep = await mk('keep');
  await c().call('StartContainer', { containerId: keep });
  // A second pod whose removal was cut the same way.
  const cfg2 = env.podConfig('half2');
  const pod2 = (await c().call('RunPodSandbox', { config: cfg2 })).podSandboxId;

  await env.kill();
  for (const [kind, id] of [['containers', cut], ['containers', gone], ['pods', pod2]] as const) {
    const f = join(root, kind, 'status', `${id}.json`);
    assert.ok(existsSync(f), f);
    rmSync(f);
  }
  await env.restart();

  const ctrs = (await c().call('ListContainers', {})).containers.map((x) => x.id);
  assert.deepEqual(ctrs, [keep], 'half-written containers are undone, the intact one stays');
  const inv = inventory(env);
  assert.deepEqual(inv.conmonIds, [keep], 'the conmon of the undone container is gone');
  assert.deepEqual(inv.ctrDirs, [keep]);
  assert.ok(!inv.mounts.some((m) => m.includes(cut) || m.includes(gone)), 'their rootfs mounts are gone');
  assert.ok(!inv.recordIds.includes(cut) && !inv.recordIds.includes(gone), 'their records are gone');

  // The pod is listed NOTREADY so kubelet's Stop/Remove can finish it.
  const pods = (await c().call('ListPodSandbox', {})).items;
  assert.equal(pods.find((p) => p.id === pod2)?.state, PodSandboxState.SANDBOX_NOTREADY);
  assert.equal(pods.find((p) => p.id === pod)?.state, PodSandboxState.SANDBOX_READY);

  await env.removeAll();
  assert.deepEqual(inventory(env), emptyInventory());
});
