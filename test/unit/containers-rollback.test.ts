import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { CricketError } from '../../src/core/errors.js';
import { HandlerSchema } from '../../src/config/schema.js';
import { ContainerEventType, ContainerState, type ContainerEventResponse, type DeepPartial } from '../../src/gen/runtime/v1/api.js';
import { makeContainerStatus } from '../../src/services/containers/container-status.js';
import { makeCreateContainer } from '../../src/services/containers/create-container.js';
import { recoverContainers } from '../../src/services/containers/recover.js';
import { makeStartContainer } from '../../src/services/containers/start-container.js';
import { ContainerStatsSampler } from '../../src/services/containers/container-stats.js';
import { endUnstartedJoined } from '../../src/services/containers/lifecycle.js';
import { containersUnit, create, createReq, ctx, leftovers } from '../helpers/containers-unit.js';

// CreateContainer and StartContainer over a fake host: every host call is logged, and
// any one can be made to fail. Whatever fails, what CreateContainer did must be undone
// newest first, and nothing may be left: no directory, mount, runc container, conmon,
// exit file, record, image hold or name.

/** Every host call of a CreateContainer that succeeds, in order (ids as <id>). */
const HAPPY = [
  'resolve mounts',
  'resolve devices',
  'load seccomp',
  'mkdir run/containers/<id>',
  'retain <id>',
  'mount run/containers/<id>/rootfs',
  'read run/containers/<id>/rootfs /etc/passwd',
  'read run/containers/<id>/rootfs /etc/group',
  'write run/containers/<id>/hostname',
  'write run/containers/<id>/config.json',
  'check log logs/c/0.log',
  'mkdir logs/c',
  'check log logs/c/0.log',
  'conmon <id>',
];

// The writable layer's undo is pushed before the mount is tried (a failed mount may
// leave its upper and work dirs); the runtime's before conmon is (a failed conmon may
// leave a runc container and a monitor). The image is held before its layers are
// mounted, so a RemoveImage cannot sweep them from under the rootfs.
const ROOTFS = ['rm layer root/containers/layers/<id>', 'rm run/containers/<id>'];
const HELD = ['release <id>', ...ROOTFS];
const MOUNTED = ['umount run/containers/<id>/rootfs', ...HELD];
const IN_RUNTIME = ['runc delete <id>', 'kill conmon <id>', ...MOUNTED];

/** Each step made to fail, and the undo log expected after it (newest first). */
const STEPS: [failAt: string, undo: string[]][] = [
  ['resolve mounts', []],
  ['resolve devices', []],
  ['load seccomp', []],
  ['mkdir run/containers/<id>', []],
  ['retain <id>', ROOTFS],
  ['mount run/containers/<id>/rootfs', HELD],
  ['read run/containers/<id>/rootfs /etc/passwd', MOUNTED],
  ['read run/containers/<id>/rootfs /etc/group', MOUNTED],
  ['write run/containers/<id>/hostname', MOUNTED],
  ['write run/containers/<id>/config.json', MOUNTED],
  ['check log logs/c/0.log', MOUNTED],
  ['mkdir logs/c', MOUNTED],
  ['check log logs/c/0.log #2', MOUNTED],
  ['conmon <id>', IN_RUNTIME],
];

/** Where failAt ("<entry>", or "<entry> #n" for its n-th time) is in a log. */
function indexIn(log: readonly string[], failAt: string): number {
  const m = / #(\d+)$/.exec(failAt);
  const entry = m ? failAt.slice(0, m.index) : failAt;
  let n = m ? Number(m[1]) : 1;
  return log.findIndex((s) => s === entry && --n === 0);
}

const files = (dir: string) => (existsSync(dir) ? readdirSync(dir) : []);

test('CreateContainer logs its host calls in order and holds what it made', async (t) => {
  const u = containersUnit(t);
  const id = await create(u);
  assert.deepEqual(u.host.log, HAPPY);
  assert.deepEqual(leftovers(u), [
    `conmon ${id}`,
    'dir root/containers/layers/<id>/upper',
    'dir root/containers/layers/<id>/work',
    'dir run/containers/<id>',
    'dir run/containers/<id>/config.json',
    'dir run/containers/<id>/hostname',
    'dir run/containers/<id>/rootfs',
    'mount run/containers/<id>/rootfs',
    `runc ${id}`,
  ]);
  assert.equal(u.deps.store.get(id)?.status.state, 'created');
  assert.deepEqual([...u.images.held], [id]);
});

test('every step of CreateContainer is undone, newest first, when a later step fails', async (t) => {
  assert.deepEqual(
    STEPS.map(([s]) => indexIn(HAPPY, s)),
    HAPPY.map((_, i) => i),
    'the table fails each host call once',
  );
  for (const [failAt, undo] of STEPS) {
    const u = containersUnit(t, failAt);
    const i = indexIn(HAPPY, failAt);
    await assert.rejects(
      makeCreateContainer(u.deps)(ctx(), createReq()),
      (e: unknown) => e instanceof CricketError && e.message.includes('failed on purpose'),
      `failing at ${failAt}`,
    );
    assert.deepEqual(u.host.log, [...HAPPY.slice(0, i), `! ${HAPPY[i]}`, ...undo], `the calls, failing at ${failAt}`);
    assert.deepEqual(leftovers(u), [], `nothing left on the host (failing at ${failAt})`);
    assert.deepEqual(files(u.deps.dirs.exits), [], `no exit file left (failing at ${failAt})`);
    assert.deepEqual(u.deps.store.list(), [], `no container (failing at ${failAt})`);
    assert.deepEqual(files(join(u.config.daemon.root, 'containers', 'meta')), [], `no record (failing at ${failAt})`);
    assert.deepEqual([...u.images.held], [], `no image hold (failing at ${failAt})`);
    // The name and attempt are free again.
    u.host.failAt = undefined;
    const again = await create(u);
    assert.equal(u.deps.store.get(again)?.meta.name, 'c');
  }
});

test('a bad input is refused before any host call that changes something', async (t) => {
  const u = containersUnit(t);
  for (const bad of [{ logPath: '../escape.log' }, { image: { image: 'absent:1' } }, { metadata: { name: 'bad/name' } }]) {
    await assert.rejects(makeCreateContainer(u.deps)(ctx(), createReq(bad)), (e: unknown) => e instanceof CricketError);
  }
  assert.deepEqual(u.host.log, []);
});

test('a failed StartContainer leaves the container EXITED with reason StartError and no process', async (t) => {
  const u = containersUnit(t);
  const id = await create(u);
  const events: DeepPartial<ContainerEventResponse>[] = [];
  u.events.subscribe((e) => events.push(e));
  u.host.log.length = 0;
  u.host.failAt = 'runc start <id>';
  const start = makeStartContainer(u.deps);
  await assert.rejects(start(ctx(), { containerId: id }), (e: unknown) => e instanceof CricketError && e.code === 'Internal' && e.message.startsWith(`start container ${id}`));
  // The process runc created, and conmon with it, are ended.
  assert.deepEqual(u.host.log, ['! runc start <id>', 'runc kill <id> SIGKILL']);
  assert.equal(u.host.runc.get(id)?.status, 'stopped');
  assert.equal(u.host.conmons.size, 0);

  const { status } = await makeContainerStatus(u.deps)(ctx(), { containerId: id, verbose: false });
  assert.equal(status?.state, ContainerState.CONTAINER_EXITED);
  assert.equal(status?.reason, 'StartError');
  assert.equal(status?.exitCode, 128);
  assert.match(status?.message ?? '', /failed on purpose/);
  assert.deepEqual(
    events.map((e) => e.containerEventType),
    [ContainerEventType.CONTAINER_STOPPED_EVENT],
  );
  // Only a created container starts.
  u.host.failAt = undefined;
  await assert.rejects(start(ctx(), { containerId: id }), (e: unknown) => e instanceof CricketError && e.code === 'FailedPrecondition');

  // The StartError was written, not only kept in memory.
  const after = u.restart();
  await recoverContainers(ctx(), after);
  assert.equal(after.store.get(id)?.status.reason, 'StartError');
  assert.equal(after.store.get(id)?.status.state, 'exited');
});

test('gVisor: a sandbox OOM-killed while runsc start runs is the container OOMKilled (137), not a StartError', async (t) => {
  const u = containersUnit(t);
  u.config.runtime.handlers['runsc'] = HandlerSchema.parse({ path: '/usr/bin/runsc', runtime_type: 'sandbox' });
  (u.pods.pod as { runtimeHandler: string }).runtimeHandler = 'runsc';
  const id = await create(u);
  const events: DeepPartial<ContainerEventResponse>[] = [];
  u.events.subscribe((e) => events.push(e));
  u.host.failAt = 'runc start <id>';
  u.host.oomKills = 1;
  await makeStartContainer(u.deps)(ctx(), { containerId: id });
  const { status } = await makeContainerStatus(u.deps)(ctx(), { containerId: id, verbose: false });
  assert.equal(status?.state, ContainerState.CONTAINER_EXITED);
  assert.equal(status?.reason, 'OOMKilled');
  assert.equal(status?.exitCode, 137);
  assert.ok(BigInt(status?.startedAt ?? 0) > 0n);
  assert.deepEqual(events.map((e) => e.containerEventType), [ContainerEventType.CONTAINER_STARTED_EVENT, ContainerEventType.CONTAINER_STOPPED_EVENT]);

  // Without an OOM kill a failed runsc start is a StartError as for runc.
  const other = await create(u, { metadata: { name: 'other' } });
  u.host.oomKills = 0;
  await assert.rejects(makeStartContainer(u.deps)(ctx(), { containerId: other }), (e: unknown) => e instanceof CricketError && e.code === 'Internal');
  assert.equal(u.deps.store.get(other)?.status.reason, 'StartError');
});

test("gVisor, one sandbox per pod: a container joins the pod's sandbox through cricket-runsc-join, its stats come from gVisor, and a never-started one ends when the pod stops", async (t) => {
  const u = containersUnit(t);
  u.config.runtime.handlers['runsc'] = HandlerSchema.parse({ path: '/usr/bin/runsc', runtime_type: 'sandbox' });
  Object.assign(u.pods.pod, { runtimeHandler: 'runsc', gvisorSandboxId: u.pods.pod.id });
  await u.deps.exits.start(); // conmon's exit files are seen as they land
  const id = await create(u);
  const meta = u.deps.store.get(id)!.meta;
  assert.equal(meta.joinedSandbox, u.pods.pod.id);
  assert.ok(meta.runtimePath.endsWith('/bin/cricket-runsc-join'), meta.runtimePath);
  assert.ok(meta.runtimeArgs.includes('--cricket-runsc=/usr/bin/runsc'), meta.runtimeArgs.join(' '));
  assert.equal(meta.runtimeRoot, u.deps.runtime('runsc').root, "runsc's own root: kill, state and exec reach the same containers");

  const started = await create(u, { metadata: { name: 'started' } });
  await makeStartContainer(u.deps)(ctx(), { containerId: started });
  const sampler = new ContainerStatsSampler(u.host);
  const st = await sampler.stats(u.deps.store.get(started)!);
  assert.equal(st.memory?.workingSetBytes?.value, 8192n, "gVisor's count, not the (empty) container cgroup's");
  assert.equal(st.cpu?.usageCoreNanoSeconds?.value, 2_000n);

  // StopPodSandbox: the running one is stopped, the created one deleted from runsc (its holder ends) and EXITED.
  await endUnstartedJoined(ctx(), u.deps, u.deps.store.get(id)!);
  assert.ok(u.host.log.includes('runc delete <id>'), u.host.log.join('\n'));
  assert.equal(u.deps.store.get(id)!.status.state, 'exited');
  assert.equal(u.deps.store.get(id)!.status.exitCode, 137);
});
