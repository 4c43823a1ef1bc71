import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { join } from 'node:path';
import { ContainerState, PodSandboxState } from '../../src/gen/runtime/v1/api.js';
import { RUNC, emptyInventory, inventory, setUpDurEnv, type DurEnv } from './durability-env.js';

// cricketd is SIGKILLed at a random point of a pod/container lifecycle, again and
// again, and restarted on the same dirs. After each restart the host must match what
// the daemon lists: running containers still run (same process), exits that happened
// while it was down carry their real code, and nothing exists on the host (mounts,
// pins, veths, IPs, iptables rules, cgroups, conmons, files) that no record explains.

const ITERATIONS = 10;
const STEPS = ['pull', 'run pod', 'create', 'start', 'exec', 'stop', 'remove container', 'stop pod', 'remove pod'] as const;
/**
 * On about half the iterations the program the chosen step runs is slowed by a second
 * (failpoint slow:1), so the kill lands while runc or a CNI plugin is mid-call — and
 * that call then completes with no daemon to see it.
 */
const SLOWED: Partial<Record<(typeof STEPS)[number], { fp: 'fp' | 'cni'; name: string; match: string }>> = {
  'run pod': { fp: 'cni', name: 'bridge', match: 'ADD' },
  create: { fp: 'fp', name: 'runc', match: 'create' },
  start: { fp: 'fp', name: 'runc', match: 'start' },
  exec: { fp: 'fp', name: 'runc', match: 'exec' },
  stop: { fp: 'fp', name: 'runc', match: 'kill' },
  'remove container': { fp: 'fp', name: 'runc', match: 'delete' },
  'stop pod': { fp: 'cni', name: 'bridge', match: 'DEL' },
  'remove pod': { fp: 'cni', name: 'bridge', match: 'DEL' },
};

function runcState(env: DurEnv, id: string): { status: string; pid: number } | undefined {
  const r = spawnSync(RUNC, ['--root', join(env.daemonDir, 'run', 'runc'), 'state', id], { encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  const s = JSON.parse(r.stdout) as { status: string; pid: number };
  return s;
}

async function waitExited(env: DurEnv, id: string): Promise<{ exitCode: number; finishedAt: bigint }> {
  for (let i = 0; ; i++) {
    const s = (await env.d.client.call('ContainerStatus', { containerId: id })).status!;
    if (s.state === ContainerState.CONTAINER_EXITED) return { exitCode: s.exitCode, finishedAt: s.finishedAt };
    if (i > 300) throw new Error(`container ${id} did not exit (state ${s.state})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Every host object of the test belongs to something the daemon lists, in a state that explains it. */
async function assertConsistent(env: DurEnv, where: string): Promise<void> {
  const pods = (await env.d.client.call('ListPodSandbox', {})).items;
  const ctrs = (await env.d.client.call('ListContainers', {})).containers;
  const podIds = new Set(pods.map((p) => p.id));
  const readyIds = new Set(pods.filter((p) => p.state === PodSandboxState.SANDBOX_READY).map((p) => p.id));
  const ctrIds = new Set(ctrs.map((c) => c.id));
  const liveCtrIds = new Set(ctrs.filter((c) => c.state === ContainerState.CONTAINER_RUNNING || c.state === ContainerState.CONTAINER_CREATED).map((c) => c.id));
  const uids = new Set(pods.map((p) => p.metadata!.uid));
  const inv = inventory(env);
  const msg = (what: string) => `${where}: ${what}\ninventory: ${JSON.stringify(inv, null, 1)}\npods: ${[...podIds]}\ncontainers: ${[...ctrIds]}`;
  for (const id of inv.podRunDirs) assert.ok(podIds.has(id), msg(`run dir of unknown pod ${id}`));
  for (const p of inv.pins) assert.ok([...podIds].some((id) => p.includes(id)), msg(`namespace pin ${p} of unknown pod`));
  for (const id of inv.ctrDirs) assert.ok(ctrIds.has(id), msg(`bundle or layer dir of unknown container ${id}`));
  for (const id of inv.recordIds) assert.ok(podIds.has(id) || ctrIds.has(id), msg(`record of ${id}, which is not listed`));
  for (const id of inv.cniCacheIds) assert.ok(podIds.has(id), msg(`CNI cache entry of ${id}, which is not a listed pod`));
  for (const id of inv.ipamIds) assert.ok(readyIds.has(id), msg(`IP reserved for ${id}, which is not a ready pod`));
  for (const id of inv.iptablesIds) assert.ok(readyIds.has(id), msg(`iptables rules for ${id}, which is not a ready pod`));
  assert.ok(inv.veths.length <= readyIds.size, msg(`${inv.veths.length} veths for ${readyIds.size} ready pods`));
  for (const id of inv.conmonIds) assert.ok(liveCtrIds.has(id), msg(`conmon for ${id}, which is not a created or running container`));
  for (const m of inv.mounts) assert.ok([...podIds, ...ctrIds].some((id) => m.includes(id)), msg(`mount of nothing listed: ${m}`));
  for (const cg of inv.cgroups) {
    const [podSeg, ctrSeg] = cg.split(':')[1]!.split('/').filter(Boolean);
    assert.ok([...uids].some((u) => podSeg === `pod-${u}`), msg(`cgroup ${cg} of unknown pod`));
    if (ctrSeg) assert.ok(ctrIds.has(ctrSeg), msg(`cgroup ${cg} of unknown container`));
  }
  for (const c of ctrs) {
    if (c.state === ContainerState.CONTAINER_RUNNING) {
      assert.equal(runcState(env, c.id)?.status, 'running', msg(`container ${c.id} is listed RUNNING but runc does not run it`));
      assert.ok(inv.conmonIds.includes(c.id), msg(`running container ${c.id} has no conmon`));
    }
    if (c.state === ContainerState.CONTAINER_EXITED) {
      const s = (await env.d.client.call('ContainerStatus', { containerId: c.id })).status!;
      assert.notEqual(s.finishedAt, 0n, msg(`exited container ${c.id} has no finish time`));
    }
  }
}

test('SIGKILL of cricketd at random points of pod/container lifecycles: restart reconciles, nothing leaks', { timeout: 600_000 }, async (t) => {
  const env = await setUpDurEnv();
  t.after(() => env.cleanup());
  const seed = Number(process.env['DUR_SEED'] ?? randomInt(1, 1_000_000));
  let rnd = seed;
  const rand = (n: number) => {
    rnd = (rnd * 1103515245 + 12345) % 2147483648;
    // The low bits of this generator cycle quickly; use the high ones.
    return Math.floor((rnd / 2147483648) * n);
  };
  t.diagnostic(`seed ${seed} (DUR_SEED=${seed} repeats the run)`);

  // A pod that lives through every crash: one container keeps running, one has exited.
  const keepCfg = env.podConfig('keep');
  const keep = (await env.d.client.call('RunPodSandbox', { config: keepCfg })).podSandboxId;
  const mk = async (pod: string, cfg: typeof keepCfg, name: string, cmd: string[]) =>
    (await env.d.client.call('CreateContainer', { podSandboxId: pod, config: env.ctrConfig(name, cmd), sandboxConfig: cfg })).containerId;
  const runner = await mk(keep, keepCfg, 'runner', ['sleep', '3600']);
  await env.d.client.call('StartContainer', { containerId: runner });
  const runnerPid = runcState(env, runner)?.pid;
  assert.ok(runnerPid && runnerPid > 0);
  const done = await mk(keep, keepCfg, 'done', ['sh', '-c', 'exit 7']);
  await env.d.client.call('StartContainer', { containerId: done });
  assert.equal((await waitExited(env, done)).exitCode, 7);

  const kills: string[] = [];
  for (let i = 0; i < ITERATIONS; i++) {
    // Exits while the daemon is down must be recorded with their real code.
    const late = await mk(keep, keepCfg, `late${i}`, ['sh', '-c', 'sleep 1; exit 5']);
    await env.d.client.call('StartContainer', { containerId: late });

    const killAt = rand(STEPS.length);
    // Steps take tens of milliseconds: a short delay lands inside the chosen one or the next.
    const slow = rand(2) === 0 ? SLOWED[STEPS[killAt]!] : undefined;
    if (slow) env[slow.fp].arm(slow.name, slow.match, 'slow:1');
    const delayMs = slow ? 200 + rand(600) : rand(60);
    let reached!: () => void;
    const atKillStep = new Promise<void>((r) => (reached = r));
    // Containers whose StopContainer returned before the kill (and not yet removed).
    const stopped = new Set<string>();
    let inFlight = '';
    const runCycle = async (tag: string, watched: boolean) => {
      const cfg = env.podConfig(tag);
      const c = env.d.client;
      let pod = '';
      let ctr = '';
      for (const [k, step] of STEPS.entries()) {
        if (watched && k === killAt) reached();
        if (watched) inFlight = step;
        switch (step) {
          case 'pull':
            await c.call('PullImage', { image: { image: env.image.ref } });
            break;
          case 'run pod':
            pod = (await c.call('RunPodSandbox', { config: cfg })).podSandboxId;
            break;
          case 'create':
            ctr = await mk(pod, cfg, 'work', ['sleep', '3600']);
            break;
          case 'start':
            await c.call('StartContainer', { containerId: ctr });
            break;
          case 'exec': {
            const r = await c.call('ExecSync', { containerId: ctr, cmd: ['echo', `hello ${tag}`], timeout: 10n });
            assert.equal(r.stdout.toString().trim(), `hello ${tag}`);
            break;
          }
          case 'stop':
            await c.call('StopContainer', { containerId: ctr, timeout: 0n });
            stopped.add(ctr);
            break;
          case 'remove container':
            await c.call('RemoveContainer', { containerId: ctr });
            stopped.delete(ctr);
            break;
          case 'stop pod':
            await c.call('StopPodSandbox', { podSandboxId: pod });
            break;
          case 'remove pod':
            await c.call('RemovePodSandbox', { podSandboxId: pod });
            break;
        }
      }
    };
    // The kill aims at one cycle; a second one runs beside it, wherever it happens to be.
    const cycleResult = runCycle(`it${i}`, true).then(
      () => 'completed',
      (err: unknown) => `interrupted (${(err as Error).message.split('\n')[0]})`,
    );
    const bystander = runCycle(`it${i}b`, false).catch(() => {});
    await Promise.race([atKillStep, cycleResult]);
    await new Promise((r) => setTimeout(r, delayMs));
    const killedDuring = inFlight;
    await env.kill();
    const outcome = await cycleResult;
    await bystander;
    if (slow) {
      env[slow.fp].disarm(slow.name);
      // Let the slowed call finish on its own, as a real one would after the daemon died.
      await new Promise((r) => setTimeout(r, 1500));
    }
    kills.push(`#${i}: "${STEPS[killAt]}"${slow ? ` (${slow.name} ${slow.match} slowed)` : ''} +${delayMs} ms (in flight: ${outcome === 'completed' ? 'none' : killedDuring})`);
    // Now and then the restart itself is killed part-way through recovery.
    const recoveryKillMs = rand(3) === 0 ? rand(400) : undefined;
    if (recoveryKillMs !== undefined) kills.push(`#${i}: recovery killed +${recoveryKillMs} ms`);
    await env.restart({ killAfterMs: recoveryKillMs });

    const where = `iteration ${i} (kill during "${killedDuring}"${slow ? ` with ${slow.name} ${slow.match} slowed` : ''}, seed ${seed})`;
    // The survivors.
    const ctrs = (await env.d.client.call('ListContainers', {})).containers;
    const byId = new Map(ctrs.map((c) => [c.id, c]));
    assert.equal(byId.get(runner)?.state, ContainerState.CONTAINER_RUNNING, `${where}: the long-running container is not listed RUNNING`);
    assert.equal(runcState(env, runner)?.pid, runnerPid, `${where}: the long-running container is not the same process`);
    assert.equal(byId.get(done)?.state, ContainerState.CONTAINER_EXITED, where);
    assert.equal((await waitExited(env, done)).exitCode, 7, `${where}: exit code of the container that exited before the crash`);
    assert.equal((await waitExited(env, late)).exitCode, 5, `${where}: exit code of a container that exited around the crash`);
    for (const id of stopped) {
      if (!byId.has(id)) continue; // its removal may have finished just before the kill
      assert.equal((await waitExited(env, id)).exitCode, 137, `${where}: exit code of a container stopped before the crash`);
    }
    await assertConsistent(env, `${where}, after restart`);

    // Finish the cycle's cleanup the way kubelet would, then only the keeper remains.
    await env.d.client.call('RemoveContainer', { containerId: late });
    for (const p of (await env.d.client.call('ListPodSandbox', {})).items) {
      if (p.id === keep) continue;
      await env.d.client.call('StopPodSandbox', { podSandboxId: p.id });
      await env.d.client.call('RemovePodSandbox', { podSandboxId: p.id });
    }
    await assertConsistent(env, `${where}, after removing the cycle's pod`);
    const left = inventory(env);
    assert.deepEqual(left.podRunDirs, [keep], where);
    assert.deepEqual(left.ctrDirs.sort(), [runner, done].sort(), where);
    assert.equal(left.veths.length, 1, where);
    assert.deepEqual(left.ipamIds, [keep], where);
    assert.deepEqual(left.cniCacheIds, [keep], where);
    assert.deepEqual(left.recordIds.sort(), [keep, runner, done].sort(), where);
  }
  t.diagnostic(`kill points: ${kills.join('; ')}`);

  await env.removeAll();
  assert.deepEqual((await env.d.client.call('ListContainers', {})).containers, []);
  assert.deepEqual(inventory(env), emptyInventory());
});
