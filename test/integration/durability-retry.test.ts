import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { CriCallError, type CriClient } from '../../src/client/cri-client.js';
import { ContainerState } from '../../src/gen/runtime/v1/api.js';
import { RUNC, emptyInventory, inventory, setUpDurEnv, type DurEnv } from './durability-env.js';

// kubelet's retry after its deadline: the first call is still working when the client
// gives up; kubelet calls again with the same metadata until it gets an answer. The
// retries may be told "reserved" while the first call is in flight, but must end with
// one resource (the finished one, or a fresh one after a clean undo) — never loop.

const RETRY_FOR_MS = 30_000;

async function retryUntilDone<T>(what: string, call: () => Promise<T>): Promise<{ value: T; reserved: number }> {
  const deadline = Date.now() + RETRY_FOR_MS;
  let reserved = 0;
  for (;;) {
    try {
      return { value: await call(), reserved };
    } catch (err) {
      if (!(err instanceof CriCallError) || err.code !== status.ALREADY_EXISTS) throw err;
      reserved++;
      if (Date.now() > deadline) throw new Error(`${what}: still "${err.message}" after ${RETRY_FOR_MS} ms of retries`);
      await new Promise((r) => setTimeout(r, 300));
    }
  }
}

function runcIds(env: DurEnv): string[] {
  const r = spawnSync(RUNC, ['--root', join(env.daemonDir, 'run', 'runc'), 'list', '-q'], { encoding: 'utf8' });
  return r.stdout.split('\n').filter(Boolean);
}

async function deadlineExceeded(p: Promise<unknown>): Promise<void> {
  const err = await p.then(
    () => assert.fail('the call beat its deadline; the failpoint did not slow it down'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof CriCallError && err.code === status.DEADLINE_EXCEEDED, String(err));
}

test('kubelet retries after a deadline get the finished pod and container, not an endless "reserved"', { timeout: 180_000 }, async (t) => {
  const env = await setUpDurEnv();
  t.after(() => env.cleanup());
  const c = (): CriClient => env.d.client;

  // RunPodSandbox: the CNI ADD takes 3 s, the caller waits 1 s.
  const cfg = env.podConfig('late-pod');
  env.cni.arm('bridge', 'ADD', 'slow:3');
  await deadlineExceeded(c().call('RunPodSandbox', { config: cfg }, { timeoutMs: 1000 }));
  env.cni.disarm('bridge');
  const { value: pod, reserved } = await retryUntilDone('RunPodSandbox retry', async () => (await c().call('RunPodSandbox', { config: cfg })).podSandboxId);
  t.diagnostic(`RunPodSandbox retry: ${reserved} "reserved" answers before the pod was handed over`);
  const pods = (await c().call('ListPodSandbox', {})).items;
  assert.deepEqual(pods.map((p) => p.id), [pod], 'exactly one pod for the name');
  let inv = inventory(env);
  assert.deepEqual(inv.ipamIds, [pod], 'one IP, held by the pod handed over');
  assert.equal(inv.veths.length, 1);

  // CreateContainer: runc create takes 3 s, the caller waits 1 s.
  const ccfg = env.ctrConfig('late-ctr', ['sleep', '3600']);
  env.fp.arm('runc', 'create', 'slow:3');
  const firstCreateAt = Date.now();
  await deadlineExceeded(c().call('CreateContainer', { podSandboxId: pod, config: ccfg, sandboxConfig: cfg }, { timeoutMs: 1000 }));
  env.fp.disarm('runc');
  const { value: ctr, reserved: cReserved } = await retryUntilDone('CreateContainer retry', async () =>
    (await c().call('CreateContainer', { podSandboxId: pod, config: ccfg, sandboxConfig: cfg })).containerId,
  );
  t.diagnostic(`CreateContainer retry: ${cReserved} "reserved" answers before success`);
  await c().call('StartContainer', { containerId: ctr });
  const ctrs = (await c().call('ListContainers', {})).containers;
  assert.deepEqual(ctrs.map((x) => [x.id, x.state]), [[ctr, ContainerState.CONTAINER_RUNNING]], 'exactly one container for the name');
  // Whatever the abandoned first attempt made must be gone once it has settled: its
  // slowed runc create wakes 3 s after the call and must find nothing to create.
  await new Promise((r) => setTimeout(r, Math.max(0, firstCreateAt + 4500 - Date.now())));
  for (let i = 0; ; i++) {
    inv = inventory(env);
    if (JSON.stringify([inv.ctrDirs, inv.conmonIds, runcIds(env)]) === JSON.stringify([[ctr], [ctr], [ctr]])) break;
    if (i > 100) assert.fail(`leftovers of the abandoned create: ${JSON.stringify({ dirs: inv.ctrDirs, conmons: inv.conmonIds, runc: runcIds(env) })}`);
    await new Promise((r) => setTimeout(r, 100));
  }

  await c().call('StopPodSandbox', { podSandboxId: pod });
  await c().call('RemovePodSandbox', { podSandboxId: pod });
  assert.deepEqual(inventory(env), emptyInventory());
  assert.deepEqual(runcIds(env), []);
});
