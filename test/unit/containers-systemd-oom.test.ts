import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { defaultConfig, type Config } from '../../src/config/schema.js';
import { NO_METRICS } from '../../src/core/metrics.js';
import { slicePath } from '../../src/host/cgroups.js';
import { makeContainersDeps } from '../../src/services/containers/area.js';
import { makeCreateContainer } from '../../src/services/containers/create-container.js';
import { stopContainer } from '../../src/services/containers/lifecycle.js';
import { makeStartContainer } from '../../src/services/containers/start-container.js';
import type { Container } from '../../src/services/containers/container-store.js';
import { EventBus } from '../../src/services/events/event-bus.js';
import { createReq, ctx, fakeImages, fakePods } from '../helpers/containers-unit.js';
import { removeDir, tempDir } from '../helpers/daemon.js';
import { FakeContainerHost } from '../helpers/fake-hosts.js';

// The systemd driver: systemd removes a container's scope as soon as it is empty, often
// before conmon 2.1.6 reads its memory.events, so conmon writes no oom file. The pod's
// cgroup counts the OOM kills below it; a SIGKILL exit we did not ask for, with more
// kills there than at the create, is OOMKilled. Over the fake host (conmon sees nothing).

async function setUp(t: { after(fn: () => Promise<void>): void }) {
  const dir = tempDir('cricket-ctr-sdoom-');
  const base = defaultConfig();
  const config: Config = {
    ...base,
    daemon: { ...base.daemon, root: join(dir, 'root'), run_root: join(dir, 'run') },
    runtime: { ...base.runtime, cgroup_driver: 'systemd' },
  };
  const host = new FakeContainerHost(dir);
  host.conmonSawOom = () => false;
  const pods = fakePods(dir);
  (pods.pod as { cgroupParent: string }).cgroupParent = slicePath('kubepods-burstable-pod1.slice');
  const deps = makeContainersDeps({ config, log: pino({ level: 'silent' }), events: new EventBus(), metrics: NO_METRICS }, { images: fakeImages(host), pods }, host);
  const made: Container[] = [];
  t.after(async () => {
    // An exit's handling goes on in the background (the runtime's delete): let it finish,
    // or its exit file lands in a removed dir, made again.
    await Promise.all(made.map((c) => c.exitHandled));
    deps.exits.close();
    removeDir(dir);
  });
  mkdirSync(deps.dirs.exits, { recursive: true });
  const run = async (name: string) => {
    const containerId = (await makeCreateContainer(deps)(ctx(), createReq({ metadata: { name, attempt: 0 } }))).containerId!;
    await makeStartContainer(deps)(ctx(), { containerId });
    const c = deps.store.get(containerId)!;
    made.push(c);
    return c;
  };
  const exit = async (id: string, code: number) => {
    writeFileSync(join(deps.dirs.exits, id), String(code));
    await deps.exits.check(id);
    await deps.store.get(id)!.waitExit(5_000);
  };
  return { deps, host, run, exit };
}

test('systemd driver: a SIGKILL exit with a new OOM kill in the pod cgroup is OOMKilled; other exits are not', async (t) => {
  const { host, run, exit } = await setUp(t);
  host.oomKills = 2; // kills in the pod before this container
  const c = await run('c1');
  assert.equal(c.meta.cgroupsPath, `kubepods-burstable-pod1.slice:cricket:${c.id}`);
  assert.equal(c.meta.podOomKills, 2);
  host.oomKills = 3;
  await exit(c.id, 137);
  assert.equal(c.status.reason, 'OOMKilled');

  const quiet = await run('c2');
  await exit(quiet.id, 137);
  assert.equal(quiet.status.reason, 'Error', 'no new kill since its create: a SIGKILL from elsewhere');
  const failed = await run('c3');
  host.oomKills = 4;
  await exit(failed.id, 1);
  assert.equal(failed.status.reason, 'Error', 'an exit code of its own is not an OOM kill');
});

test('systemd driver: a SIGKILL we sent (StopContainer) is not taken for an OOM kill', async (t) => {
  const { deps, host, run } = await setUp(t);
  host.oomKills = 0;
  const c = await run('c1');
  host.oomKills = 1; // another container of the pod was OOM-killed meanwhile
  const stopping = stopContainer(ctx(), deps, c, 0);
  writeFileSync(join(deps.dirs.exits, c.id), '137');
  await deps.exits.check(c.id);
  await stopping;
  assert.equal(c.status.reason, 'Error');
});
