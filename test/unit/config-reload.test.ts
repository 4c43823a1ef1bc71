import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DgramSocket } from 'node-unix-socket';
import { LiveConfig } from '../../src/config/live-config.js';
import { planReload } from '../../src/config/reload.js';
import { ConfigSchema, type Config } from '../../src/config/schema.js';
import { SdNotifier } from '../../src/host/sd-notify.js';

const cfg = (raw: Record<string, unknown>): Config => ConfigSchema.parse(raw);

test('planReload: live keys are applied, the others kept and named; handlers are added, never swapped or dropped', () => {
  const running = cfg({ runtime: { handlers: { runc: {}, old: { path: '/usr/bin/old' } } } });
  const loaded = cfg({
    daemon: { log_level: 'debug', listen: '/run/other.sock' },
    runtime: { default_handler: 'crun', handlers: { runc: { path: '/usr/bin/changed' }, crun: { path: '/usr/bin/crun' } } },
    network: { plugin_timeout_seconds: 5 },
    images: { pinned_images: ['pause:1'] },
    streaming: { port: 1234 },
  });
  const plan = planReload(running, loaded);
  assert.deepEqual(plan.applied.sort(), ['daemon.log_level', 'images.pinned_images', 'network.plugin_timeout_seconds', 'runtime.default_handler', 'runtime.handlers']);
  assert.deepEqual(plan.needsRestart.sort(), ['daemon.listen', 'streaming.port']);
  assert.deepEqual(plan.keptHandlers, ['old', 'runc']);
  assert.equal(plan.config.daemon.log_level, 'debug');
  assert.equal(plan.config.daemon.listen, running.daemon.listen);
  assert.equal(plan.config.streaming.port, running.streaming.port);
  assert.equal(plan.config.network.plugin_timeout_seconds, 5);
  assert.equal(plan.config.runtime.default_handler, 'crun');
  assert.deepEqual(Object.keys(plan.config.runtime.handlers).sort(), ['crun', 'old', 'runc']);
  assert.equal(plan.config.runtime.handlers['runc']!.path, '/usr/sbin/runc', 'a running handler keeps its definition');
  assert.equal(running.daemon.log_level, 'info', 'the running config is not touched');

  const same = planReload(running, running);
  assert.deepEqual([same.applied, same.needsRestart, same.keptHandlers], [[], [], []]);
});

test('LiveConfig: its view follows replace() and prints the current config; info() counts reloads', () => {
  const live = new LiveConfig(cfg({}));
  const view = live.view;
  const first = live.info();
  assert.equal(first.reloads, 0);
  live.replace(cfg({ daemon: { log_level: 'warn' } }));
  assert.equal(view.daemon.log_level, 'warn');
  assert.equal(JSON.parse(JSON.stringify(view)).daemon.log_level, 'warn');
  assert.equal(live.info().reloads, 1);
  assert.ok(live.info().loadedAt >= first.loadedAt);
  assert.throws(() => ((view as { daemon: unknown }).daemon = {}), TypeError);
});

test('SdNotifier sends READY, RELOADING with a monotonic time, STOPPING and watchdog beats to the socket; bad paths are refused', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cricket-notify-'));
  const sock = new DgramSocket();
  t.after(() => {
    sock.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const path = join(dir, 'notify');
  sock.bind(path);
  const got: string[] = [];
  const waiters: (() => void)[] = [];
  sock.on('data', (b: Buffer) => {
    got.push(b.toString());
    waiters.shift()?.();
  });
  const next = () => new Promise<string>((r) => (got.length > 0 ? r(got.shift()!) : waiters.push(() => r(got.shift()!))));
  const n = new SdNotifier(path);
  assert.equal(await n.ready('up'), undefined);
  assert.equal(await next(), 'READY=1\nSTATUS=up');
  await n.reloading();
  assert.match(await next(), /^RELOADING=1\nMONOTONIC_USEC=\d+$/);
  await n.stopping();
  assert.equal(await next(), 'STOPPING=1');
  n.startWatchdog(20_000, () => {});
  assert.equal(await next(), 'WATCHDOG=1');
  assert.equal(await next(), 'WATCHDOG=1', 'beats keep coming');
  n.close();
  assert.ok((await n.send('READY=1')) instanceof Error, 'a closed notifier reports, not throws');
  const gone = new SdNotifier(join(dir, 'nobody'));
  assert.ok((await gone.ready()) instanceof Error, 'a missing socket is reported, not thrown');
  gone.close();
  assert.throws(() => new SdNotifier('@abstract'), /abstract namespace/);
  assert.throws(() => new SdNotifier('relative'), /absolute/);
});
