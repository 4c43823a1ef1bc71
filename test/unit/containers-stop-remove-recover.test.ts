import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { CricketError } from '../../src/core/errors.js';
import { UpdateContainerResourcesRequest } from '../../src/gen/runtime/v1/api.js';
import { overlayPaths } from '../../src/host/overlay.js';
import { makeExecSync } from '../../src/services/containers/exec-sync.js';
import { makeReopenContainerLog } from '../../src/services/containers/log-reopen.js';
import { recoverContainers } from '../../src/services/containers/recover.js';
import { makeRemoveContainer } from '../../src/services/containers/remove-container.js';
import { makeStartContainer } from '../../src/services/containers/start-container.js';
import { makeStopContainer } from '../../src/services/containers/stop-container.js';
import { makeUpdateContainerResources } from '../../src/services/containers/update-container-resources.js';
import { containersUnit, create, ctx, leftovers, type ContainersUnit } from '../helpers/containers-unit.js';

// StopContainer, RemoveContainer and recovery over a fake host. The fake's containers
// end as conmon would report it: an exit file the daemon's own ExitWatcher reads.

const files = (dir: string) => (existsSync(dir) ? readdirSync(dir) : []);

/** A daemon that has recovered (so its exit watcher runs) with one running container. */
async function running(u: ContainersUnit, name = 'c'): Promise<string> {
  const id = await create(u, { metadata: { name }, logPath: `${name}/0.log` });
  await makeStartContainer(u.deps)(ctx(), { containerId: id });
  assert.equal(u.deps.store.get(id)?.status.state, 'running');
  return id;
}

test('a container that exits before runc start returns is EXITED with startedAt <= finishedAt', async (t) => {
  const u = containersUnit(t);
  await recoverContainers(ctx(), u.deps);
  const id = await create(u);
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  u.host.onStart = async () => {
    u.host.exit(id, 3);
    while (u.deps.store.get(id)!.status.state !== 'exited') await sleep(5);
    await sleep(5); // runc start returns a few ms after the exit was recorded
  };
  await makeStartContainer(u.deps)(ctx(), { containerId: id });
  const s = u.deps.store.get(id)!.status;
  assert.deepEqual([s.state, s.exitCode, s.reason], ['exited', 3, 'Error']);
  assert.ok(BigInt(s.startedAt) > 0n && BigInt(s.startedAt) <= BigInt(s.finishedAt), `started ${s.startedAt}, finished ${s.finishedAt}`);
});

test('StopContainer sends the stop signal, deletes the exited container from runc, then is a no-op; unknown ids are success', async (t) => {
  const u = containersUnit(t);
  await recoverContainers(ctx(), u.deps);
  const id = await running(u);
  const stop = makeStopContainer(u.deps);
  u.host.log.length = 0;
  await stop(ctx(), { containerId: id, timeout: 10n });
  assert.deepEqual(u.host.log, ['runc kill <id> SIGTERM', 'runc delete <id>', 'umount run/containers/<id>/rootfs']);
  const c = u.deps.store.get(id)!;
  assert.equal(c.status.state, 'exited');
  assert.equal(c.status.exitCode, 143);
  assert.equal(c.status.reason, 'Error');
  await stop(ctx(), { containerId: id, timeout: 0n });
  await stop(ctx(), { containerId: 'e'.repeat(64), timeout: 0n });
  assert.deepEqual(u.host.log, ['runc kill <id> SIGTERM', 'runc delete <id>', 'umount run/containers/<id>/rootfs'], 'nothing more was done');
});

test('a container that exits by itself is deleted from runc once its exit is seen; RemoveContainer then leaves runc alone', async (t) => {
  const u = containersUnit(t);
  await recoverContainers(ctx(), u.deps);
  const id = await running(u);
  u.host.log.length = 0;
  const c = u.deps.store.get(id)!;
  const seen = new Promise<void>((resolve) => u.deps.events.subscribe(() => resolve()));
  u.host.exit(id, 0);
  await seen;
  await c.exitHandled;
  assert.equal(c.status.state, 'exited');
  assert.equal(u.host.runc.has(id), false, 'runc no longer knows it');
  assert.deepEqual(u.host.log, ['runc delete <id>', 'umount run/containers/<id>/rootfs']);
  assert.equal(u.host.mounts.size, 0, 'its rootfs is unmounted with it');
  await makeRemoveContainer(u.deps)(ctx(), { containerId: id });
  assert.equal(u.host.log.filter((l) => l === 'runc delete <id>').length, 1, 'no second delete');
  assert.equal(u.host.log.filter((l) => l === 'umount run/containers/<id>/rootfs').length, 1, 'no second unmount');
  assert.deepEqual(leftovers(u), []);
});

test('RemoveContainer kills a running container, undoes all CreateContainer did, and is idempotent', async (t) => {
  const u = containersUnit(t);
  await recoverContainers(ctx(), u.deps);
  const id = await running(u);
  u.host.log.length = 0;
  const remove = makeRemoveContainer(u.deps);
  await remove(ctx(), { containerId: id.slice(0, 12) });
  assert.deepEqual(u.host.log, [
    'runc kill <id> SIGKILL',
    'runc delete <id>',
    'umount run/containers/<id>/rootfs',
    'rm run/containers/<id>',
    'rm run/containers/attach/<id>',
    'rm root/containers/layers/<id>',
    'release <id>',
  ]);
  assert.deepEqual(leftovers(u), []);
  assert.deepEqual(files(u.deps.dirs.exits), [], 'the exit file is gone with the container');
  assert.equal(u.deps.store.get(id), undefined);
  assert.deepEqual(files(join(u.config.daemon.root, 'containers', 'meta')), []);
  await remove(ctx(), { containerId: id });
  await remove(ctx(), { containerId: 'e'.repeat(64) });
  assert.equal(u.host.log.length, 7, 'nothing more was done');
  // The name is free again.
  await running(u);
});

test('a container is stopped and removed by the runtime it was made with, even once its handler is gone from the config', async (t) => {
  const u = containersUnit(t);
  await recoverContainers(ctx(), u.deps);
  const id = await running(u);
  // The handler table no longer has it (a reload, or a restart with another config).
  const deps = { ...u.deps, runtime: (h: string): never => { throw new CricketError('InvalidArgument', `runtime handler "${h}" is not configured`); } };
  u.host.log.length = 0;
  await makeStopContainer(deps)(ctx(), { containerId: id, timeout: 0n });
  await makeRemoveContainer(deps)(ctx(), { containerId: id });
  assert.equal(u.deps.store.get(id), undefined);
  assert.ok(u.host.log.includes('runc kill <id> SIGKILL') && u.host.log.includes('runc delete <id>'), u.host.log.join(', '));
  assert.deepEqual(leftovers(u), []);
});

test('a RemoveContainer cut short is finished by the retry', async (t) => {
  const u = containersUnit(t);
  await recoverContainers(ctx(), u.deps);
  const id = await create(u);
  u.host.failAt = 'rm root/containers/layers/<id>';
  const remove = makeRemoveContainer(u.deps);
  await assert.rejects(remove(ctx(), { containerId: id }), (e: unknown) => e instanceof CricketError);
  assert.ok(u.deps.store.get(id), 'still listed, for kubelet to retry');
  u.host.failAt = undefined;
  await remove(ctx(), { containerId: id });
  assert.deepEqual(leftovers(u), []);
  assert.equal(u.deps.store.get(id), undefined);
});

test('recovery: gone from the runtime → EXITED 255; exited while down → its code; running stays; orphans are undone', async (t) => {
  const u = containersUnit(t);
  await recoverContainers(ctx(), u.deps);
  const gone = await running(u, 'gone');
  const exited = await running(u, 'exited');
  const alive = await running(u, 'alive');
  const created = await create(u, { metadata: { name: 'created' }, logPath: 'created/0.log' });
  // While the daemon is down: one container vanishes from runc (a reboot would do it),
  // one exits with code 3, and a CreateContainer is cut short before its records.
  u.deps.exits.close();
  u.host.runc.delete(gone);
  u.host.conmons.delete(gone);
  u.host.exit(exited, 3);
  const orphan = 'f'.repeat(64);
  const bundle = join(u.deps.dirs.run, orphan);
  await u.host.makeDir(bundle);
  await u.host.mountOverlay([], overlayPaths(bundle, join(u.deps.dirs.layers, orphan)));
  await u.host.createWithConmon(ctx(), {
    conmonPath: '/usr/bin/conmon', runtimePath: 'runc', runtimeRoot: '/run/runc', runtimeArgs: [], id: orphan, name: 'o', bundleDir: bundle,
    logPath: join(bundle, 'console.log'), exitDir: u.deps.dirs.exits, socketDir: u.deps.dirs.sockets,
    stdin: false, stdinOnce: false, tty: false, logLevel: 'info', timeoutMs: 1000,
  });
  u.host.log.length = 0;

  const d = u.restart();
  await recoverContainers(ctx(), d);
  const st = (id: string) => d.store.get(id)!.status;
  assert.equal(st(gone).state, 'exited');
  assert.equal(st(gone).exitCode, 255);
  assert.match(st(gone).message, /exit code is unknown/);
  assert.deepEqual([st(exited).state, st(exited).exitCode, st(exited).reason], ['exited', 3, 'Error']);
  assert.equal(st(alive).state, 'running');
  assert.equal(st(alive).pid, u.host.runc.get(alive)!.pid);
  assert.equal(st(created).state, 'created');
  assert.deepEqual([...u.images.held].sort(), [gone, exited, alive, created].sort(), 'images held again');

  assert.equal(d.store.get(orphan), undefined);
  // The container that exited while the daemon was down is deleted from runc once its
  // exit is seen (in the background): the one 'runc delete' outside the orphan's undo.
  await d.store.get(exited)!.exitHandled;
  assert.equal(u.host.runc.has(exited), false);
  // The two deletes and unmounts (that one's and the orphan's) may interleave.
  const released = ['runc delete <id>', 'umount run/containers/<id>/rootfs'];
  for (const l of released) assert.equal(u.host.log.filter((x) => x === l).length, 2, l);
  assert.deepEqual(u.host.log.filter((l) => !released.includes(l)), [
    'mkdir run/containers/attach',
    ...['retain <id>', 'retain <id>', 'retain <id>', 'retain <id>'],
    // What discards a crash cut short left, in each of the three directories.
    'sweep run/containers',
    'sweep root/containers/layers',
    'sweep run/containers/attach',
    'kill conmon <id>',
    'rm run/containers/<id>',
    'rm run/containers/attach/<id>',
    'rm layer root/containers/layers/<id>',
  ]);
  assert.equal(u.host.conmons.has(orphan), false);
  assert.equal(u.host.runc.has(orphan), false);
  assert.equal([...u.host.mounts].some((m) => m.includes(orphan)), false);
  assert.equal([...u.host.paths].some((p) => p.includes(orphan)), false);
});

test('exec-sync, resource updates and log reopening reach the host through the seam', async (t) => {
  const u = containersUnit(t);
  await recoverContainers(ctx(), u.deps);
  const id = await running(u);
  u.host.log.length = 0;
  const r = await makeExecSync(u.deps)(ctx(), { containerId: id, cmd: ['echo', 'hi'], timeout: 5n });
  assert.equal(Buffer.from(r.stdout!).toString(), 'out');
  await makeUpdateContainerResources(u.deps)(ctx(), UpdateContainerResourcesRequest.fromPartial({ containerId: id, linux: { cpuShares: 512n } }));
  await makeReopenContainerLog(u.deps)(ctx(), { containerId: id });
  assert.deepEqual(u.host.log, ['exec <id> echo hi', 'runc update <id>', 'reopen logs run/containers/<id>']);
  u.host.failAt = 'reopen logs run/containers/<id>';
  await assert.rejects(makeReopenContainerLog(u.deps)(ctx(), { containerId: id }), (e: unknown) => e instanceof CricketError && e.code === 'FailedPrecondition');
});
