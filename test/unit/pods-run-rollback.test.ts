import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { ConfigSchema, defaultConfig } from '../../src/config/schema.js';
import { backgroundContext } from '../../src/core/context.js';
import { CricketError } from '../../src/core/errors.js';
import { KeyedMutex } from '../../src/core/keyed-mutex.js';
import { NamespaceMode, RunPodSandboxRequest, type DeepPartial } from '../../src/gen/runtime/v1/api.js';
import type { PodsDeps } from '../../src/services/pods/pods-deps.js';
import { recoverSandboxes } from '../../src/services/pods/recover.js';
import { makeRemovePodSandbox } from '../../src/services/pods/remove-pod-sandbox.js';
import { makeRunPodSandbox } from '../../src/services/pods/run-pod-sandbox.js';
import { EventBus } from '../../src/services/events/event-bus.js';
import { SandboxStore } from '../../src/services/pods/sandbox-store.js';
import { makeStopPodSandbox } from '../../src/services/pods/stop-pod-sandbox.js';
import { removeDir, tempDir } from '../helpers/daemon.js';
import { fakePodHost } from '../helpers/fake-hosts.js';

// RunPodSandbox over a fake host: every side effect is logged, and any one step can be
// made to fail. Whatever fails, the undo log must be the done log reversed, and the
// pod must leave no record, file, name or port behind.

type Log = string[];

function deps(dir: string, log: Log, failAt?: string): PodsDeps {
  const { host, cni } = fakePodHost(log, failAt);
  const config = { ...defaultConfig(), logs: { allowed_roots: [] } };
  return {
    config,
    log: pino({ level: 'silent' }),
    store: new SandboxStore(join(dir, 'root')),
    events: new EventBus(),
    cni,
    host,
    mutex: new KeyedMutex(),
    containers: () => undefined,
    podsRunDir: join(dir, 'run'),
  };
}

const ctx = () => backgroundContext(pino({ level: 'silent' }), 't');
const req = (over: DeepPartial<RunPodSandboxRequest> = {}) =>
  RunPodSandboxRequest.fromPartial({
    config: {
      metadata: { name: 'p', namespace: 'n', uid: 'u' },
      portMappings: [{ containerPort: 80, hostPort: 8080 }],
      linux: { securityContext: { namespaceOptions: { pid: NamespaceMode.POD } } },
    },
    ...over,
  });

const undoOf = (done: string) => {
  const step = done.slice(3);
  if (step === 'pin') return ['undo pin uts', 'undo pin ipc', 'undo pin net'];
  if (step === 'addProcess') return [];
  return [`undo ${step}`];
};

test('every step of RunPodSandbox is undone, newest first, when a later step fails', async (t) => {
  for (const failAt of ['cgroup', 'pin', 'shm', 'init', 'addProcess', 'cni']) {
    const dir = tempDir('cricket-run-rb-');
    t.after(() => removeDir(dir));
    const log: Log = [];
    const d = deps(dir, log, failAt);
    await assert.rejects(makeRunPodSandbox(d)(ctx(), req()), (e: unknown) => e instanceof CricketError && e.message.includes(`${failAt} failed on purpose`));
    const done = log.filter((l) => l.startsWith('do '));
    const undone = log.filter((l) => l.startsWith('undo '));
    // Pins, shm and CNI push their undo before trying (a failed attempt may leave part
    // of its work: a mounted pin, a half-done ADD), so their own failure is undone too;
    // the init's undo is pushed once it started.
    const undoneEvenIfFailed = ['pin', 'shm', 'cni'].includes(failAt) ? [`do ${failAt}`] : [];
    const expected = [...done, ...undoneEvenIfFailed].reverse().flatMap(undoOf);
    assert.deepEqual(undone, expected, `failing at ${failAt}`);
    assert.deepEqual(readdirSync(join(dir, 'run')), [], `no pod dir left (failing at ${failAt})`);
    assert.equal(existsSync(join(dir, 'root', 'meta')) && readdirSync(join(dir, 'root', 'meta')).length > 0, false);
    assert.deepEqual(d.store.list(), []);
    // The name and the host port are free again.
    const ok = deps(dir, [], undefined);
    const again = await makeRunPodSandbox({ ...ok, store: d.store })(ctx(), req());
    assert.match(again.podSandboxId!, /^[0-9a-f]{64}$/);
  }
});

test('Stop then Remove over the fake host undo everything Run did; both are idempotent', async (t) => {
  const dir = tempDir('cricket-run-rb-');
  t.after(() => removeDir(dir));
  const log: Log = [];
  const d = deps(dir, log);
  const { podSandboxId } = await makeRunPodSandbox(d)(ctx(), req());
  assert.deepEqual(log, ['do cgroup', 'do pin', 'do shm', 'do init', 'do addProcess', 'do cni']);
  log.length = 0;
  const stop = makeStopPodSandbox(d);
  const remove = makeRemovePodSandbox(d);
  await stop(ctx(), { podSandboxId: podSandboxId! });
  assert.deepEqual(log, ['undo init', 'undo cni']);
  assert.equal(d.store.resolve(podSandboxId!)!.status.state, 'notready');
  await remove(ctx(), { podSandboxId: podSandboxId! });
  await remove(ctx(), { podSandboxId: podSandboxId! });
  assert.equal(d.store.resolve(podSandboxId!), undefined);
  assert.deepEqual(readdirSync(join(dir, 'run')), []);
  assert.ok(log.includes('undo shm') && log.includes('undo pin net') && log.includes('undo cgroup'));
  await stop(ctx(), { podSandboxId: 'a'.repeat(64) });
});

test('recovery over the fake host: an intact pod stays READY, one whose pins or init are gone is NOTREADY, an unfinished run dir is undone', async (t) => {
  const dir = tempDir('cricket-run-rb-');
  t.after(() => removeDir(dir));
  const log: Log = [];
  const { host, cni, state } = fakePodHost(log, undefined);
  const make = (store: SandboxStore): PodsDeps => ({ ...deps(dir, log), host, cni, store });
  const first = make(new SandboxStore(join(dir, 'root')));
  const run = makeRunPodSandbox(first);
  const intact = (await run(ctx(), req())).podSandboxId!;
  const pinsGone = (await run(ctx(), req({ config: { metadata: { name: 'q', namespace: 'n', uid: 'u2' } } }))).podSandboxId!;
  const initGone = (await run(ctx(), req({ config: { metadata: { name: 'r', namespace: 'n', uid: 'u3' }, linux: { securityContext: { namespaceOptions: { pid: NamespaceMode.POD } } } } }))).podSandboxId!;
  // What a reboot or a crash leaves: one pod's pins gone, another's init gone, and the
  // run dir of a RunPodSandbox cut short before its record was written.
  for (const p of [...state.pinned]) if (p.includes(pinsGone)) state.pinned.delete(p);
  state.inits.delete(first.store.get(initGone)!.status.initPid!);
  const orphan = 'f'.repeat(64);
  mkdirSync(join(dir, 'run', orphan, 'ns'), { recursive: true });
  log.length = 0;

  // A fresh store, as a restarted daemon has, over the same records and host.
  const again = make(new SandboxStore(join(dir, 'root')));
  await recoverSandboxes(ctx(), again);
  const stateOf = (id: string) => again.store.get(id)?.status.state;
  assert.equal(stateOf(intact), 'ready');
  assert.equal(stateOf(pinsGone), 'notready');
  assert.equal(stateOf(initGone), 'notready');
  assert.ok(log.includes('undo pin net') && log.includes('undo shm'), `the orphan's pins and shm are released: ${log.join(', ')}`);
  assert.equal(existsSync(join(dir, 'run', orphan)), false, 'the orphan run dir is gone');
  assert.ok(existsSync(join(dir, 'run', intact)), 'a recorded pod keeps its run dir');
});

test("a gVisor pod: its sandbox is the last step, undone first when it fails; Stop removes it; recovery marks a pod whose sandbox is gone NOTREADY", async (t) => {
  const dir = tempDir('cricket-run-rb-');
  t.after(() => removeDir(dir));
  const withRunsc = (d: PodsDeps): PodsDeps => ({
    ...d,
    config: ConfigSchema.parse({ ...d.config, runtime: { ...d.config.runtime, handlers: { ...d.config.runtime.handlers, runsc: { path: '/usr/bin/runsc', runtime_type: 'sandbox' } } } }),
  });
  const gvReq = () => req({ runtimeHandler: 'runsc', config: { metadata: { name: 'g', namespace: 'n', uid: 'ug' }, linux: { securityContext: { namespaceOptions: { pid: NamespaceMode.POD } } } } });
  const log: Log = [];
  await assert.rejects(makeRunPodSandbox(withRunsc(deps(dir, log, 'sandbox')))(ctx(), gvReq()), /sandbox failed on purpose/);
  assert.deepEqual(log, ['do cgroup', 'do pin', 'do shm', 'do cni', 'undo sandbox', 'undo cni', 'undo shm', 'undo pin uts', 'undo pin ipc', 'undo pin net', 'undo cgroup'], 'no host-side pod init: the sandbox has its own');
  assert.deepEqual(readdirSync(join(dir, 'run')), []);

  log.length = 0;
  const d = withRunsc(deps(dir, log));
  const { podSandboxId } = await makeRunPodSandbox(d)(ctx(), gvReq());
  const infra = d.store.get(podSandboxId!)!.meta.sandboxInfra!;
  assert.equal(infra.id, podSandboxId);
  assert.equal(infra.runtimePath, '/usr/bin/runsc');
  assert.ok(infra.cgroupsPath.endsWith(`/${podSandboxId}`), infra.cgroupsPath);
  assert.ok(d.store.get(podSandboxId!)!.view().gvisorSandboxId === podSandboxId, 'containers see which sandbox to join');

  // Recovery: the sandbox process is gone → NOTREADY.
  const again = { ...d, store: new SandboxStore(join(dir, 'root')), host: { ...d.host, sandboxInfraAlive: () => false } };
  await recoverSandboxes(ctx(), again);
  assert.equal(again.store.get(podSandboxId!)!.status.state, 'notready');
  log.length = 0;
  await makeStopPodSandbox(again)(ctx(), { podSandboxId: podSandboxId! });
  assert.deepEqual(log, ['undo sandbox', 'undo cni']);

  // A RunPodSandbox cut short after its sandbox note: recovery removes that sandbox too.
  const orphan = 'e'.repeat(64);
  mkdirSync(join(dir, 'run', orphan, 'ns'), { recursive: true });
  writeFileSync(join(dir, 'run', orphan, 'sandbox.json'), JSON.stringify({ ...infra, id: orphan, bundleDir: join(dir, 'run', orphan, 'infra') }));
  log.length = 0;
  await recoverSandboxes(ctx(), { ...again, store: new SandboxStore(join(dir, 'root')) });
  assert.equal(log[0], 'undo sandbox', log.join(', '));
  assert.equal(existsSync(join(dir, 'run', orphan)), false);
});
