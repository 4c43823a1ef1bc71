import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { parseManifests } from '../../src/services/play/manifest.js';
import { PodRunner } from '../../src/services/play/pod-runner.js';
import type { CriCall } from '../../src/services/play/cri-caller.js';
import { ContainerState, PodSandboxState } from '../../src/gen/runtime/v1/api.js';
import { Reconciler } from '../../src/services/play/reconciler.js';
import { EventBus } from '../../src/services/events/event-bus.js';
import { tempDir, removeDir } from '../helpers/daemon.js';

// The pod runner over a fake CRI and a fake clock: init order, each restart policy,
// kubelet's back-off, adoption after a restart, and events waking the right pod.

interface FakeCtr {
  id: string;
  pod: string;
  name: string;
  attempt: number;
  state: ContainerState;
  exitCode: number;
  startedAt: number;
  finishedAt: number;
  cmd: string[];
}

function fakeCri(clock: { now: number }, images: { present: boolean; pullFails?: boolean } = { present: true }) {
  const pods = new Map<string, { id: string; labels: Record<string, string>; state: PodSandboxState }>();
  const ctrs = new Map<string, FakeCtr>();
  const calls: string[] = [];
  let seq = 0;
  const id = () => (++seq).toString(16).padStart(64, '0');
  const ns = (ms: number) => BigInt(ms) * 1_000_000n;
  const toCri = (c: FakeCtr) => ({ id: c.id, podSandboxId: c.pod, state: c.state, metadata: { name: c.name, attempt: c.attempt } });
  const cri = (async (method: string, req: any) => {
    calls.push(method === 'CreateContainer' ? `create ${req.config.metadata.name}#${req.config.metadata.attempt}` : method);
    switch (method) {
      case 'ListPodSandbox': {
        const sel = (req.filter?.labelSelector ?? {}) as Record<string, string>;
        return { items: [...pods.values()].filter((p) => Object.entries(sel).every(([k, v]) => p.labels[k] === v)).map((p) => ({ id: p.id, state: p.state })) };
      }
      case 'RunPodSandbox': {
        const p = { id: id(), labels: req.config.labels, state: PodSandboxState.SANDBOX_READY };
        pods.set(p.id, p);
        return { podSandboxId: p.id };
      }
      case 'PodSandboxStatus':
        return { status: { id: req.podSandboxId, state: pods.get(req.podSandboxId)?.state ?? PodSandboxState.SANDBOX_NOTREADY, network: { ip: '10.0.0.2' } } };
      case 'StopPodSandbox':
        for (const c of ctrs.values()) if (c.pod === req.podSandboxId) c.state = ContainerState.CONTAINER_EXITED;
        if (pods.has(req.podSandboxId)) pods.get(req.podSandboxId)!.state = PodSandboxState.SANDBOX_NOTREADY;
        return {};
      case 'RemovePodSandbox':
        pods.delete(req.podSandboxId);
        for (const [k, c] of ctrs) if (c.pod === req.podSandboxId) ctrs.delete(k);
        return {};
      case 'ListContainers':
        return { containers: [...ctrs.values()].filter((c) => !req.filter?.podSandboxId || c.pod === req.filter.podSandboxId).map(toCri) };
      case 'ContainerStatus': {
        const c = ctrs.get(req.containerId)!;
        return { status: { ...toCri(c), exitCode: c.exitCode, startedAt: ns(c.startedAt), finishedAt: ns(c.finishedAt) } };
      }
      case 'ImageStatus':
        return images.present ? { image: { id: 'sha256:x' } } : {};
      case 'PullImage':
        if (images.pullFails) throw new Error('RegistryUnavailable: no route');
        images.present = true;
        return { imageRef: 'sha256:x' };
      case 'CreateContainer': {
        const c: FakeCtr = { id: id(), pod: req.podSandboxId, name: req.config.metadata.name, attempt: req.config.metadata.attempt, state: ContainerState.CONTAINER_CREATED, exitCode: 0, startedAt: 0, finishedAt: 0, cmd: req.config.command };
        ctrs.set(c.id, c);
        return { containerId: c.id };
      }
      case 'StartContainer': {
        const c = ctrs.get(req.containerId)!;
        c.state = ContainerState.CONTAINER_RUNNING;
        c.startedAt = clock.now;
        return {};
      }
      case 'RemoveContainer':
        ctrs.delete(req.containerId);
        return {};
      case 'StopContainer': {
        const c = ctrs.get(req.containerId);
        if (c) Object.assign(c, { state: ContainerState.CONTAINER_EXITED, exitCode: 137, finishedAt: clock.now });
        return {};
      }
      default:
        throw new Error(`fake CRI: ${method}`);
    }
  }) as unknown as CriCall;
  const byName = (name: string) => [...ctrs.values()].filter((c) => c.name === name).sort((a, b) => b.attempt - a.attempt)[0];
  const exit = (name: string, code: number) => Object.assign(byName(name)!, { state: ContainerState.CONTAINER_EXITED, exitCode: code, finishedAt: clock.now });
  return { cri, calls, pods, ctrs, byName, exit };
}

const log = pino({ level: 'silent' });

function runnerFor(yaml: string, clock: { now: number }, f: ReturnType<typeof fakeCri>, wakes: number[] = []) {
  const m = parseManifests(yaml, 't.yaml').pods[0]!;
  return new PodRunner(m, 'uid1', 0, '/logs', { cri: f.cri, log, volumesDir: '/nonexistent/volumes', wakeAt: (ms) => wakes.push(ms), now: () => clock.now });
}

const spec = (policy: string, extra = '') => `kind: Pod
metadata: { name: p }
spec:
  restartPolicy: ${policy}
${extra}  containers:
    - { name: main, image: busybox:1, command: [run] }
`;

test('init containers run one at a time, in order, each to a clean exit; then the containers', async () => {
  const clock = { now: 1_000_000 };
  const f = fakeCri(clock);
  const r = runnerFor(spec('Always', '  initContainers:\n    - { name: one, image: busybox:1 }\n    - { name: two, image: busybox:1 }\n'), clock, f);
  await r.sync();
  assert.deepEqual(f.calls.filter((c) => c.startsWith('create')), ['create one#0']);
  assert.equal((await r.row()).status, 'Init:0/2');
  await r.sync();
  assert.equal(f.calls.filter((c) => c.startsWith('create')).length, 1, 'no second init while the first runs');
  f.exit('one', 0);
  await r.sync();
  assert.deepEqual(f.calls.filter((c) => c.startsWith('create')), ['create one#0', 'create two#0']);
  assert.equal((await r.row()).status, 'Init:1/2');
  f.exit('two', 0);
  await r.sync();
  assert.deepEqual(f.calls.filter((c) => c.startsWith('create')).slice(-1), ['create main#0']);
  const row = await r.row();
  assert.equal(row.status, 'Running');
  assert.equal(row.ready, '1/1');
});

test('a failed init container: Never gives Init:Error; OnFailure restarts it after the back-off', async () => {
  for (const policy of ['Never', 'OnFailure']) {
    const clock = { now: 1_000_000 };
    const f = fakeCri(clock);
    const wakes: number[] = [];
    const r = runnerFor(spec(policy, '  initContainers:\n    - { name: one, image: busybox:1 }\n'), clock, f, wakes);
    await r.sync();
    f.exit('one', 2);
    await r.sync();
    if (policy === 'Never') {
      assert.equal((await r.row()).status, 'Init:Error');
      assert.equal(f.byName('main'), undefined);
      continue;
    }
    assert.equal((await r.row()).status, 'Init:CrashLoopBackOff');
    assert.deepEqual(wakes, [clock.now + 10_000]);
    clock.now += 10_000;
    await r.sync();
    assert.equal(f.byName('one')!.attempt, 1);
    assert.equal(f.byName('main'), undefined, 'containers wait for the init container');
  }
});

test('restart policies: Always restarts any exit, OnFailure only failures, Never none', async () => {
  const cases: [string, number, boolean, string][] = [
    ['Always', 0, true, 'CrashLoopBackOff'],
    ['Always', 1, true, 'CrashLoopBackOff'],
    ['OnFailure', 0, false, 'Completed'],
    ['OnFailure', 1, true, 'CrashLoopBackOff'],
    ['Never', 0, false, 'Completed'],
    ['Never', 1, false, 'Error'],
  ];
  for (const [policy, code, restarts, status] of cases) {
    const clock = { now: 1_000_000 };
    const f = fakeCri(clock);
    const wakes: number[] = [];
    const r = runnerFor(spec(policy), clock, f, wakes);
    await r.sync();
    clock.now += 1000;
    f.exit('main', code);
    await r.sync();
    assert.equal((await r.row()).status, status, `${policy} exit ${code}`);
    clock.now += 10_000;
    await r.sync();
    assert.equal(f.byName('main')!.attempt, restarts ? 1 : 0, `${policy} exit ${code}`);
  }
});

test("back-off: 10 s, 20 s, 40 s ... between restarts; from 10 s again after 10 min running", async () => {
  const clock = { now: 1_000_000 };
  const f = fakeCri(clock);
  const wakes: number[] = [];
  const r = runnerFor(spec('Always'), clock, f, wakes);
  await r.sync();
  const delays: number[] = [];
  for (let i = 0; i < 4; i++) {
    clock.now += 1000;
    f.exit('main', 1);
    wakes.length = 0;
    await r.sync();
    const due = wakes[0]!;
    delays.push((due - clock.now) / 1000);
    clock.now = due - 1;
    await r.sync();
    assert.equal(f.byName('main')!.attempt, i, 'not before the back-off has passed');
    clock.now = due;
    await r.sync();
    assert.equal(f.byName('main')!.attempt, i + 1);
  }
  assert.deepEqual(delays, [10, 20, 40, 80]);
  assert.equal((await r.row()).restarts, 4);
  clock.now += 600_000;
  f.exit('main', 1);
  wakes.length = 0;
  await r.sync();
  assert.equal(wakes[0]! - clock.now, 10_000);
});

test('imagePullPolicy: Never with no image is ErrImageNeverPull; a failed pull is ErrImagePull, retried; IfNotPresent pulls once, Always each start', async () => {
  const yaml = (policy: string) => `kind: Pod\nmetadata: { name: p }\nspec:\n  containers:\n    - { name: main, image: busybox:1, imagePullPolicy: ${policy} }\n`;
  const clock = { now: 1_000_000 };
  let f = fakeCri(clock, { present: false });
  let r = runnerFor(yaml('Never'), clock, f);
  await r.sync();
  assert.equal((await r.row()).status, 'ErrImageNeverPull');
  assert.equal(f.byName('main'), undefined);
  const wakes: number[] = [];
  const images = { present: false, pullFails: true };
  f = fakeCri(clock, images);
  r = runnerFor(yaml('IfNotPresent'), clock, f, wakes);
  await r.sync();
  assert.equal((await r.row()).status, 'ErrImagePull');
  assert.equal(wakes.length, 1, 'a retry is asked for');
  images.pullFails = false;
  await r.sync();
  assert.equal((await r.row()).status, 'Running');
  assert.equal(f.calls.filter((c) => c === 'PullImage').length, 2);
  f = fakeCri(clock);
  r = runnerFor(yaml('Always'), clock, f);
  await r.sync();
  assert.equal(f.calls.filter((c) => c === 'PullImage').length, 1, 'Always pulls even when present');
});

test('a restarted daemon adopts its pod by uid; a pod that is not ready is made again', async () => {
  const clock = { now: 1_000_000 };
  const f = fakeCri(clock);
  await runnerFor(spec('Always'), clock, f).sync();
  const [pod] = [...f.pods.values()];
  const again = runnerFor(spec('Always'), clock, f);
  await again.sync();
  assert.equal(again.sandboxId, pod!.id);
  assert.equal(f.calls.filter((c) => c === 'RunPodSandbox').length, 1);
  assert.equal(f.calls.filter((c) => c.startsWith('create')).length, 1);
  pod!.state = PodSandboxState.SANDBOX_NOTREADY;
  const third = runnerFor(spec('Always'), clock, f);
  await third.sync();
  assert.notEqual(third.sandboxId, pod!.id);
  assert.equal(f.pods.has(pod!.id), false, 'the not-ready pod was removed');
  assert.equal(f.calls.filter((c) => c.startsWith('create')).length, 2);
});

test('reconciler: a container event wakes the pod it belongs to; apply twice converges; down removes', async () => {
  const dir = tempDir('cricket-play-unit-');
  try {
    const clock = { now: Date.now() };
    const f = fakeCri(clock);
    const events = new EventBus();
    const rec = new Reconciler({ root: dir, cri: f.cri, log, events });
    await rec.start({ requestId: 't', log, signal: new AbortController().signal });
    const yaml = spec('Never', '  initContainers:\n    - { name: one, image: busybox:1 }\n');
    await rec.apply(yaml, 't.yaml', '/logs');
    const settle = async () => {
      for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    };
    await settle();
    assert.equal(f.byName('main'), undefined);
    f.exit('one', 0);
    events.publish({ containerId: f.byName('one')!.id, containerEventType: 1 });
    await settle();
    assert.ok(f.byName('main'), 'the event brought the next sync');
    await rec.apply(yaml, 't.yaml', '/logs');
    await settle();
    assert.equal(f.pods.size, 1);
    assert.equal((await rec.down(yaml, 't.yaml')).pods.length, 1);
    assert.equal(f.pods.size, 0);
    assert.deepEqual(await rec.status(), []);
    rec.close();
  } finally {
    removeDir(dir);
  }
});
