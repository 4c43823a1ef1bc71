import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DgramSocket } from 'node-unix-socket';
import { CRICKET, REPO_ROOT, removeDir, startDaemon, tempDir, type TestDaemon } from '../helpers/daemon.js';

/** A notify socket like systemd's: every datagram cricketd sends, in order, and a way to wait for one. */
function notifySocket(path: string) {
  const sock = new DgramSocket();
  sock.bind(path);
  const all: string[] = [];
  let wake: (() => void) | undefined;
  sock.on('data', (b: Buffer) => {
    all.push(b.toString());
    wake?.();
  });
  return {
    all,
    /** Resolves with the index of the first message at or after `from` that matches. */
    async waitFor(re: RegExp, from = 0): Promise<number> {
      for (;;) {
        const i = all.findIndex((m, j) => j >= from && re.test(m));
        if (i >= 0) return i;
        await new Promise<void>((r) => (wake = r));
      }
    },
    close: () => sock.close(),
  };
}

/** Waits (on the daemon's output, polled) for a log line matching all the patterns, after `from` chars. */
async function waitForLine(d: TestDaemon, res: RegExp[], from = 0): Promise<string> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const line = d.output().slice(from).split('\n').find((l) => res.every((re) => re.test(l)));
    if (line) return line;
    if (Date.now() > deadline) throw new Error(`no line matching ${res.join(' ')} in: ${d.output().slice(from)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const configInfo = async (d: TestDaemon) => {
  const s = await d.client.call('Status', { verbose: true });
  return { loaded: JSON.parse(s.info['configLoaded']!) as { loadedAt: string; reloads: number }, config: JSON.parse(s.info['config']!), handlers: s.runtimeHandlers.map((h) => h.name) };
};

test('under NOTIFY_SOCKET: READY=1 once recovery is done, WATCHDOG=1, SIGHUP reloads (RELOADING=1 … READY=1), a bad file keeps the config, STOPPING=1', async (t) => {
  const dir = tempDir('cricket-reload-');
  const notify = notifySocket(join(dir, 'notify'));
  let d: TestDaemon | undefined;
  t.after(async () => {
    await d?.cleanup();
    notify.close();
    removeDir(dir);
  });
  const ddir = join(dir, 'daemon');
  mkdirSync(join(ddir, 'conf.d'), { recursive: true });
  d = await startDaemon({ dir: ddir, noWaitReady: true, env: { NOTIFY_SOCKET: join(dir, 'notify'), WATCHDOG_USEC: '200000' } });
  const ready = await notify.waitFor(/^READY=1/);
  assert.equal(notify.all[ready], 'READY=1\nSTATUS=serving the CRI');
  // READY means recovered: the first call after it is served, not UNAVAILABLE.
  await d.client.call('ListPodSandbox', {});
  await notify.waitFor(/^WATCHDOG=1$/);
  assert.doesNotMatch(d.output(), /"level":20/, 'no debug lines at the default level');
  const first = await configInfo(d);
  assert.equal(first.loaded.reloads, 0);

  // A drop-in turns debug on: lines at debug at once, no restart.
  const dropIn = (name: string, text: string) => writeFileSync(join(ddir, 'conf.d', name), text);
  dropIn('50-level.toml', '[daemon]\nlog_level = "debug"\n');
  let mark = notify.all.length;
  d.child.kill('SIGHUP');
  const reloading = await notify.waitFor(/^RELOADING=1\nMONOTONIC_USEC=\d+$/, mark);
  await notify.waitFor(/^READY=1$/, reloading);
  let from = d.output().length;
  await d.client.call('ListPodSandbox', {});
  await waitForLine(d, [/"level":20/, /"rpc":"ListPodSandbox"/, /rpc start/], from);
  const second = await configInfo(d);
  assert.equal(second.loaded.reloads, 1);
  assert.equal(second.config.daemon.log_level, 'debug');
  // `cricket info` shows when the config was loaded.
  const info = JSON.parse(execFileSync(CRICKET, ['--endpoint', `unix://${d.socket}`, 'info'], { encoding: 'utf8' }));
  assert.deepEqual(info.configLoaded, second.loaded);

  // A file that does not validate: logged with file, key and reason; nothing changes.
  dropIn('60-bad.toml', '[daemon]\nlog_level = "loud"\n');
  from = d.output().length;
  mark = notify.all.length;
  d.child.kill('SIGHUP');
  const refused = await waitForLine(d, [/config reload refused; the running config is kept/], from);
  assert.match(refused, /60-bad\.toml: key daemon\.log_level/);
  await notify.waitFor(/^READY=1$/, mark);
  assert.deepEqual((await configInfo(d)).loaded, second.loaded);
  rmSync(join(ddir, 'conf.d', '60-bad.toml'));

  // A new handler is usable at once; a key that cannot change live is named and kept.
  dropIn('70-more.toml', '[runtime.handlers.extra]\npath = "/usr/sbin/runc"\n\n[streaming]\nport = 1\n\n[daemon]\nshutdown_grace_seconds = 3\n');
  from = d.output().length;
  d.child.kill('SIGHUP');
  const warned = await waitForLine(d, [/cannot change while cricketd runs/], from);
  assert.match(warned, /"keys":\["daemon\.shutdown_grace_seconds","streaming\.port"\]/);
  await waitForLine(d, [/config reloaded/], from);
  const third = await configInfo(d);
  assert.ok(third.handlers.includes('extra'));
  assert.equal(third.config.streaming.port, 0);
  assert.equal(third.config.daemon.shutdown_grace_seconds, 10);

  // A storm of SIGHUPs while the files change: one consistent config at the end.
  rmSync(join(ddir, 'conf.d', '50-level.toml'));
  mark = notify.all.length;
  for (let i = 0; i < 30; i++) d.child.kill('SIGHUP');
  await notify.waitFor(/^RELOADING=1/, mark);
  const settled = async () => {
    for (;;) {
      const after = notify.all.slice(mark);
      const n = (re: RegExp) => after.filter((m) => re.test(m)).length;
      if (n(/^RELOADING=1/) > 0 && n(/^RELOADING=1/) === n(/^READY=1/)) return;
      await notify.waitFor(/^READY=1$/, notify.all.length);
    }
  };
  await settled();
  const last = await configInfo(d);
  assert.equal(last.config.daemon.log_level, 'info');
  assert.ok(last.handlers.includes('extra'));
  assert.ok(last.loaded.reloads > third.loaded.reloads);
  await d.client.call('Version', {});

  // SIGTERM: STOPPING=1, then a clean exit.
  mark = notify.all.length;
  assert.equal(await d.stop(), 0);
  await notify.waitFor(/^STOPPING=1$/, mark);
});

test('the shipped systemd unit is Type=notify with KillMode=process and passes systemd-analyze verify', (t) => {
  const unit = readFileSync(join(REPO_ROOT, 'packaging', 'cricketd.service'), 'utf8');
  assert.match(unit, /^Type=notify$/m);
  assert.match(unit, /^KillMode=process$/m);
  assert.match(unit, /^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
  const dir = tempDir('cricket-unit-');
  t.after(() => removeDir(dir));
  // verify checks that ExecStart exists: point it at this checkout's launcher.
  writeFileSync(join(dir, 'cricketd.service'), unit.replace('/usr/local/bin/cricketd', join(REPO_ROOT, 'bin', 'cricketd')));
  const r = spawnSync('systemd-analyze', ['verify', join(dir, 'cricketd.service')], { encoding: 'utf8' });
  assert.equal(r.error, undefined, 'systemd-analyze runs (Debian\'s systemd package)');
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  assert.equal(`${r.stdout}${r.stderr}`.trim(), '', 'no warning either');
});
