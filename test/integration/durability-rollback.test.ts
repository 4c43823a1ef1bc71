import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { status } from '@grpc/grpc-js';
import { CriCallError } from '../../src/client/cri-client.js';
import { ContainerState, type DeepPartial, type PodSandboxConfig } from '../../src/gen/runtime/v1/api.js';
import { emptyInventory, inventory, setUpDurEnv, type Inventory } from './durability-env.js';

// Failpoint rollback suite: a step of a multi-step RPC fails, hangs past its timeout,
// or crashes after doing its work; the RPC fails with an error that names the step,
// everything it did is undone, and the same call succeeds once the fault is gone.

const PLUGIN_TIMEOUT_S = 3;

/** Processes (a hung plugin, a conmon) still carrying the test dir in their command line or environment. */
function strays(under: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${e}/cmdline`, 'utf8');
      const env = readFileSync(`/proc/${e}/environ`, 'utf8');
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      if (/^\d+ \(.*\) Z/.test(stat)) continue;
      if ((cmd.includes(under) || env.includes(under)) && !cmd.includes('registry') && !cmd.includes('daemon/main.js')) out.push(`${e}: ${cmd.replace(/\0/g, ' ')}`);
    } catch {
      // gone
    }
  }
  return out;
}

async function until(what: string, ok: () => boolean | Promise<boolean>, maxMs = 20_000, show: () => string = () => ''): Promise<void> {
  const deadline = Date.now() + maxMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`still not ${what} after ${maxMs} ms ${show()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The inventory once the pod `podId` (or none) is all that exists. */
function onlyPod(inv: Inventory, podId: string | undefined): Inventory {
  return {
    ...inv,
    // A pod's own objects are fine; the checks below are about everything else.
    mounts: inv.mounts.filter((m) => !podId || !m.includes(podId)),
    pins: inv.pins.filter((p) => !podId || !p.includes(podId)),
    podRunDirs: inv.podRunDirs.filter((id) => id !== podId),
    veths: podId ? inv.veths.slice(1) : inv.veths,
    ipamIds: inv.ipamIds.filter((id) => id !== podId),
    iptablesIds: inv.iptablesIds.filter((id) => id !== podId),
    recordIds: inv.recordIds.filter((id) => id !== podId),
    cniCacheIds: inv.cniCacheIds.filter((id) => id !== podId),
    cgroups: inv.cgroups.filter((c) => !podId || c.split(':')[1]!.split('/').filter(Boolean).length > 1),
  };
}

async function expectFailure(p: Promise<unknown>, pattern: RegExp): Promise<CriCallError> {
  const err = await p.then(
    () => assert.fail('the call succeeded despite the failpoint'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof CriCallError, String(err));
  assert.match(err.message, pattern);
  return err;
}

test('failpoint rollback: RunPodSandbox, CreateContainer, StartContainer undo everything when a step fails; Remove/Stop can be retried', { timeout: 300_000 }, async (t) => {
  const env = await setUpDurEnv({ pluginTimeoutSeconds: PLUGIN_TIMEOUT_S });
  t.after(() => env.cleanup());
  const c = () => env.d.client;
  const clean = async (what: string, podId?: string) => {
    const stray = () => strays(env.dir).filter((s) => !/conmon/.test(s));
    await until(
      `clean after ${what}`,
      () => JSON.stringify(onlyPod(inventory(env), podId)) === JSON.stringify(emptyInventory()) && stray().length === 0,
      20_000,
      () => `${JSON.stringify(onlyPod(inventory(env), podId), null, 1)}\n${stray().join('\n')}`,
    );
  };
  const runPodRetry = async (cfg: DeepPartial<PodSandboxConfig>) => {
    const id = (await c().call('RunPodSandbox', { config: cfg })).podSandboxId;
    const pod = (await c().call('PodSandboxStatus', { podSandboxId: id })).status!;
    assert.match(pod.network!.ip, new RegExp(`^${env.net.subnetPrefix.replace(/\./g, '\\.')}\\.`));
    await c().call('StopPodSandbox', { podSandboxId: id });
    await c().call('RemovePodSandbox', { podSandboxId: id });
    assert.deepEqual(inventory(env), emptyInventory());
  };

  await t.test('RunPodSandbox: CNI ADD fails in the second plugin of the chain', async () => {
    env.cni.arm('portmap', 'ADD', 'fail');
    const cfg = env.podConfig('cni-fail');
    await expectFailure(c().call('RunPodSandbox', { config: cfg }), /network|CNI|portmap/i);
    await clean('a failed CNI ADD');
    env.cni.disarm('portmap');
    await runPodRetry(cfg);
  });

  await t.test('RunPodSandbox: CNI ADD hangs past the plugin timeout, caller with a short deadline', async () => {
    env.cni.arm('bridge', 'ADD', 'hang');
    const cfg = env.podConfig('cni-hang');
    const err = await expectFailure(c().call('RunPodSandbox', { config: cfg }, { timeoutMs: 1500 }), /deadline/i);
    assert.equal(err.code, status.DEADLINE_EXCEEDED);
    // The daemon gives up on the plugin at its own timeout, kills it and unwinds.
    await clean('a hung CNI ADD');
    env.cni.disarm('bridge');
    await runPodRetry(cfg);
  });

  await t.test('RunPodSandbox: a CNI plugin crashes after doing its ADD', async () => {
    env.cni.arm('bridge', 'ADD', 'crash-after');
    const cfg = env.podConfig('cni-crash');
    await expectFailure(c().call('RunPodSandbox', { config: cfg }), /network|CNI|bridge|signal/i);
    await clean('a crashed CNI ADD');
    env.cni.disarm('bridge');
    await runPodRetry(cfg);
  });

  // The container cases share one pod.
  const podCfg = env.podConfig('ctr-faults');
  const pod = (await c().call('RunPodSandbox', { config: podCfg })).podSandboxId;
  const create = (name: string) =>
    c().call('CreateContainer', { podSandboxId: pod, config: env.ctrConfig(name, ['sleep', '3600']), sandboxConfig: podCfg });
  const retryCreateStart = async (name: string) => {
    const id = (await create(name)).containerId;
    await c().call('StartContainer', { containerId: id });
    assert.equal((await c().call('ContainerStatus', { containerId: id })).status!.state, ContainerState.CONTAINER_RUNNING);
    await c().call('RemoveContainer', { containerId: id });
    await clean(`removing ${name}`, pod);
  };

  await t.test('CreateContainer: runc create fails', async () => {
    env.fp.arm('runc', 'create', 'fail');
    await expectFailure(create('runc-create'), /runc|conmon|create/i);
    await clean('a failed runc create', pod);
    assert.deepEqual((await c().call('ListContainers', {})).containers, []);
    env.fp.disarm('runc');
    await retryCreateStart('runc-create');
  });

  await t.test('RemoveContainer: runc delete fails, the retry finishes the removal', async () => {
    const id = (await create('runc-delete')).containerId;
    await c().call('StartContainer', { containerId: id });
    env.fp.arm('runc', 'delete', 'fail');
    await expectFailure(c().call('RemoveContainer', { containerId: id }), /delete|runc/i);
    env.fp.disarm('runc');
    await c().call('RemoveContainer', { containerId: id });
    assert.deepEqual((await c().call('ListContainers', {})).containers, []);
    await clean('a retried RemoveContainer', pod);
  });

  await t.test('CreateContainer: conmon fails', async () => {
    env.fp.arm('conmon', '*', 'fail');
    await expectFailure(create('conmon-fail'), /conmon/i);
    await clean('a failed conmon', pod);
    assert.deepEqual((await c().call('ListContainers', {})).containers, []);
    env.fp.disarm('conmon');
    await retryCreateStart('conmon-fail');
  });

  await t.test('StartContainer: runc start fails', async () => {
    const id = (await create('runc-start')).containerId;
    env.fp.arm('runc', 'start', 'fail');
    await expectFailure(c().call('StartContainer', { containerId: id }), /start/i);
    env.fp.disarm('runc');
    // The container is reported as a failed start and holds no process any more.
    const st = (await c().call('ContainerStatus', { containerId: id })).status!;
    assert.equal(st.state, ContainerState.CONTAINER_EXITED);
    assert.equal(st.reason, 'StartError');
    await until('rid of the container process and its conmon', () => inventory(env).conmonIds.length === 0);
    await c().call('RemoveContainer', { containerId: id });
    await clean('a failed runc start', pod);
    await retryCreateStart('runc-start');
  });

  // StopPodSandbox whose CNI DEL fails: an error, and the retry releases the network.
  env.cni.arm('bridge', 'DEL', 'fail');
  await expectFailure(c().call('StopPodSandbox', { podSandboxId: pod }), /network|CNI|bridge/i);
  env.cni.disarm('bridge');
  await c().call('StopPodSandbox', { podSandboxId: pod });
  assert.deepEqual(inventory(env).ipamIds, []);
  assert.deepEqual(inventory(env).veths, []);
  await c().call('RemovePodSandbox', { podSandboxId: pod });
  assert.deepEqual(inventory(env), emptyInventory());
  assert.deepEqual(strays(env.dir), []);
});
