import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { defaultConfig, type Config } from '../../src/config/schema.js';
import { NO_METRICS, type Metrics } from '../../src/core/metrics.js';
import { makeContainersDeps } from '../../src/services/containers/area.js';
import { makeCreateContainer } from '../../src/services/containers/create-container.js';
import { makeStartContainer } from '../../src/services/containers/start-container.js';
import { EventBus } from '../../src/services/events/event-bus.js';
import { createReq, ctx, fakeImages, fakePods } from '../helpers/containers-unit.js';
import { removeDir, tempDir } from '../helpers/daemon.js';
import { FakeContainerHost } from '../helpers/fake-hosts.js';

// What the containers area reports to the metrics port over a fake host: each runtime
// call by binary and subcommand (conmon's create as "create"), and an OOM kill once.

test('runtime calls are timed by binary and subcommand; an exit the OOM killer caused is counted once', async (t) => {
  const dir = tempDir('cricket-ctr-metrics-');
  const base = defaultConfig();
  const config: Config = { ...base, daemon: { ...base.daemon, root: join(dir, 'root'), run_root: join(dir, 'run') } };
  const host = new FakeContainerHost(dir);
  host.conmonSawOom = () => true;
  const calls: string[] = [];
  let ooms = 0;
  let oomSeen!: () => void;
  const oom = new Promise<void>((r) => (oomSeen = r));
  const metrics: Metrics = {
    ...NO_METRICS,
    runtimeCall: (rt, sub, s, ok) => void calls.push(`${rt} ${sub} ${ok ? 'ok' : 'failed'}${s >= 0 ? '' : ' negative'}`),
    containerOomKilled: () => {
      ooms++;
      oomSeen();
    },
  };
  const deps = makeContainersDeps({ config, log: pino({ level: 'silent' }), events: new EventBus(), metrics }, { images: fakeImages(host), pods: fakePods(dir) }, host);
  t.after(() => {
    deps.exits.close();
    removeDir(dir);
  });
  const containerId = (await makeCreateContainer(deps)(ctx(), createReq())).containerId!;
  await makeStartContainer(deps)(ctx(), { containerId });
  assert.deepEqual(calls, ['/usr/sbin/runc create ok', '/usr/sbin/runc start ok']);

  // conmon's exit file, as the daemon's watcher reads it (recovery makes the dir).
  mkdirSync(deps.dirs.exits, { recursive: true });
  writeFileSync(join(deps.dirs.exits, containerId), '137');
  await deps.exits.check(containerId);
  const c = deps.store.get(containerId)!;
  await c.waitExit(5_000);
  // recordExit saves the record before the count is made.
  await oom;
  assert.equal(c.status.reason, 'OOMKilled', JSON.stringify(c.status));
  assert.equal(ooms, 1);
  await deps.exits.check(containerId);
  // A second look returns at once (already exited); its callback runs within a turn.
  await new Promise((r) => setImmediate(r));
  assert.equal(ooms, 1, 'an exit seen again is not counted again');
});
