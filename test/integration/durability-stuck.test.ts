import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { ContainerState } from '../../src/gen/runtime/v1/api.js';
import { emptyInventory, inventory, setUpDurEnv } from './durability-env.js';

// One stuck item must not hold recovery up: runc hangs for one container while the
// daemon reconciles it after a restart. The daemon still becomes ready (that item
// gives up at daemon.recovery_item_timeout_seconds, 10 s here), the other container is
// recovered, and once runc behaves again both can be stopped and removed.

test('recovery with runc hanging for one container still completes, and the rest is recovered', { timeout: 180_000 }, async (t) => {
  const env = await setUpDurEnv();
  t.after(() => env.cleanup());
  const c = () => env.d.client;
  const cfg = env.podConfig('stuck');
  const pod = (await c().call('RunPodSandbox', { config: cfg })).podSandboxId;
  const start = async (name: string, cmd: string[]) => {
    const id = (await c().call('CreateContainer', { podSandboxId: pod, config: env.ctrConfig(name, cmd), sandboxConfig: cfg })).containerId;
    await c().call('StartContainer', { containerId: id });
    return id;
  };
  const wedged = await start('wedged', ['sleep', '3600']);
  const fine = await start('fine', ['sleep', '3600']);
  // Exits while the daemon is down, and must still be recorded despite the stuck item.
  const quits = await start('quits', ['sh', '-c', 'sleep 1; exit 9']);

  await env.kill();
  // Every runc call naming the wedged container hangs.
  env.fp.arm('runc', wedged, 'hang');
  const t0 = Date.now();
  await env.restart();
  t.diagnostic(`restart with one wedged item took ${Date.now() - t0} ms`);
  // It was the per-item timeout that freed recovery (not runc's own, longer one).
  const gaveUp = env.d.output().split('\n').find((l) => l.includes('cannot reconcile container') && l.includes(wedged));
  assert.match(gaveUp ?? '(no such log line)', /recovery item timed out after 10000 ms/);
  const byId = new Map((await c().call('ListContainers', {})).containers.map((x) => [x.id, x.state]));
  assert.equal(byId.get(fine), ContainerState.CONTAINER_RUNNING);
  assert.ok(byId.has(wedged), 'the container whose reconcile timed out keeps its record');
  for (let i = 0; ; i++) {
    const s = (await c().call('ContainerStatus', { containerId: quits })).status!;
    if (s.state === ContainerState.CONTAINER_EXITED) {
      assert.equal(s.exitCode, 9);
      break;
    }
    assert.ok(i < 200, 'the container that exited while the daemon was down is never recorded as exited');
    await new Promise((r) => setTimeout(r, 50));
  }

  env.fp.disarm('runc');
  // The hung runc state was killed at the item timeout, not left behind.
  const hung = readdirSync('/proc').filter((p) => {
    try {
      return /^\d+$/.test(p) && readFileSync(`/proc/${p}/environ`, 'utf8').includes(`FAILPOINT_HANG=${env.dir}`);
    } catch {
      return false;
    }
  });
  assert.deepEqual(hung, []);
  await env.removeAll();
  assert.deepEqual(inventory(env), emptyInventory());
});
