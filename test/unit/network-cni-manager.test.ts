import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { backgroundContext } from '../../src/core/context.js';
import { CricketError } from '../../src/core/errors.js';
import { CniConfigSource } from '../../src/cni/cni-config-loader.js';
import { CniManager } from '../../src/cni/cni-manager.js';
import { removeDir, tempDir } from '../helpers/daemon.js';

// A fake CNI plugin: logs what it was given, fails when its config says so, and on ADD
// returns the previous result plus one address (or a fresh result if first).
const FAKE = `#!${process.execPath}
const fs = require('fs');
const conf = JSON.parse(fs.readFileSync(0, 'utf8'));
const e = process.env;
fs.appendFileSync(conf.log, JSON.stringify({ cmd: e.CNI_COMMAND, type: conf.type, id: e.CNI_CONTAINERID, netns: e.CNI_NETNS || null,
  ifname: e.CNI_IFNAME, args: e.CNI_ARGS, path: e.CNI_PATH, prev: conf.prevResult || null, rc: conf.runtimeConfig || null, extra: conf['cni.dev/valid-attachments'] || null }) + '\\n');
if (conf.failOn === e.CNI_COMMAND || (e.CNI_COMMAND === 'DEL' && conf.failDelWhile && fs.existsSync(conf.failDelWhile))) { process.stdout.write(JSON.stringify({ code: 11, msg: 'planned failure', details: conf.type })); process.exit(1); }
if (e.CNI_COMMAND === 'ADD') {
  const r = conf.prevResult || { cniVersion: conf.cniVersion, interfaces: [{ name: 'eth0', sandbox: e.CNI_NETNS }], ips: [] };
  r.ips = [...r.ips, { address: conf.addr, interface: 0 }];
  process.stdout.write(JSON.stringify(r));
}
`;

function setup(version: string, plugins: Record<string, unknown>[]) {
  const dir = tempDir('cricket-cni-unit-');
  const bin = join(dir, 'bin');
  const conf = join(dir, 'conf');
  mkdirSync(bin);
  mkdirSync(conf);
  const log = join(dir, 'calls.log');
  for (const name of ['one', 'two', 'three']) {
    writeFileSync(join(bin, name), FAKE);
    chmodSync(join(bin, name), 0o755);
  }
  writeFileSync(join(conf, '10-fake.conflist'), JSON.stringify({ cniVersion: version, name: 'fake', plugins: plugins.map((p) => ({ log, ...p })) }));
  const make = () =>
    new CniManager({ source: new CniConfigSource(conf), binDirs: [join(dir, 'nothing-here'), bin], cacheDir: join(dir, 'cache'), timeoutMs: 10_000 });
  const calls = () =>
    existsSync(log)
      ? readFileSync(log, 'utf8')
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l))
      : [];
  return { dir, conf, make, calls, log };
}

const ctx = backgroundContext(pino({ level: 'silent' }), 'test');
const req = (podId: string) => ({
  podId,
  netnsPath: '/nonexistent/netns',
  args: { IgnoreUnknown: '1', K8S_POD_NAME: 'p', K8S_POD_NAMESPACE: 'ns', K8S_POD_INFRA_CONTAINER_ID: podId, K8S_POD_UID: 'u' },
  capabilityArgs: { portMappings: [{ hostPort: 1, containerPort: 2, protocol: 'tcp' }] },
});

test('ADD chains the plugins with prevResult; DEL runs in reverse with the cached result, even from a new manager', async (t) => {
  const s = setup('1.0.0', [
    { type: 'one', addr: '10.0.0.2/24' },
    { type: 'two', addr: 'fd00::2/64', capabilities: { portMappings: true } },
  ]);
  t.after(() => removeDir(s.dir));
  const att = await s.make().setUp(ctx, req('pod1'));
  assert.equal(att.network, 'fake');
  assert.deepEqual(att.ips, ['10.0.0.2', 'fd00::2']);
  let calls = s.calls();
  assert.deepEqual(calls.map((c) => `${c.cmd} ${c.type}`), ['ADD one', 'ADD two']);
  assert.equal(calls[0].prev, null);
  assert.deepEqual(calls[1].prev.ips.map((i: { address: string }) => i.address), ['10.0.0.2/24']);
  assert.equal(calls[0].rc, null, 'plugin one declares no capabilities');
  assert.deepEqual(calls[1].rc, { portMappings: [{ hostPort: 1, containerPort: 2, protocol: 'tcp' }] });
  assert.equal(calls[0].args, 'IgnoreUnknown=1;K8S_POD_NAME=p;K8S_POD_NAMESPACE=ns;K8S_POD_INFRA_CONTAINER_ID=pod1;K8S_POD_UID=u');
  assert.equal(calls[0].ifname, 'eth0');
  assert.equal(calls[0].id, 'pod1');
  assert.match(calls[0].path, /nothing-here:.*bin$/);

  // The config changes (or vanishes) before teardown: DEL still uses what ADD used.
  writeFileSync(join(s.conf, '10-fake.conflist'), 'broken');
  const fresh = s.make();
  assert.equal(await fresh.hasAttachment('pod1'), true);
  await fresh.tearDown(ctx, 'pod1');
  calls = s.calls().slice(2);
  assert.deepEqual(calls.map((c) => `${c.cmd} ${c.type}`), ['DEL two', 'DEL one']);
  assert.deepEqual(calls[0].prev.ips.length, 2, 'DEL gets the final ADD result');
  assert.equal(calls[0].netns, null, 'a vanished netns is not passed');
  assert.equal(await fresh.hasAttachment('pod1'), false);
  await fresh.tearDown(ctx, 'pod1');
  assert.equal(s.calls().length, 4, 'a second teardown runs nothing');
});

test('a failing ADD is followed by DEL of the whole list and reported with the plugin message', async (t) => {
  const s = setup('1.0.0', [{ type: 'one', addr: '10.0.0.3/24' }, { type: 'two', addr: '10.0.0.4/24', failOn: 'ADD' }, { type: 'three', addr: 'x' }]);
  t.after(() => removeDir(s.dir));
  const m = s.make();
  await assert.rejects(m.setUp(ctx, req('pod2')), (e: unknown) => e instanceof CricketError && /two ADD failed: planned failure: two \(CNI error code 11\)/.test(e.message));
  assert.deepEqual(s.calls().map((c) => `${c.cmd} ${c.type}`), ['ADD one', 'ADD two', 'DEL three', 'DEL two', 'DEL one']);
  assert.equal(await m.hasAttachment('pod2'), false);
});

test('older CNI versions get no prevResult on DEL; CHECK runs from 0.4.0; GC only from 1.1.0', async (t) => {
  const old = setup('0.3.1', [{ type: 'one', addr: '10.0.0.5/24' }]);
  t.after(() => removeDir(old.dir));
  const m = old.make();
  await m.setUp(ctx, req('pod3'));
  await m.check(ctx, 'pod3');
  await m.gc(ctx, ['pod3']);
  await m.tearDown(ctx, 'pod3');
  assert.deepEqual(old.calls().map((c) => `${c.cmd} ${c.prev === null ? 'noprev' : 'prev'}`), ['ADD noprev', 'DEL noprev']);

  const cur = setup('1.1.0', [{ type: 'one', addr: '10.0.0.6/24' }]);
  t.after(() => removeDir(cur.dir));
  const n = cur.make();
  await n.setUp(ctx, req('pod4'));
  await n.check(ctx, 'pod4');
  await n.gc(ctx, ['pod4']);
  await n.status(ctx);
  const calls = cur.calls();
  assert.deepEqual(calls.map((c) => c.cmd), ['ADD', 'CHECK', 'GC', 'STATUS']);
  assert.equal(calls[1].prev.ips[0].address, '10.0.0.6/24');
  assert.deepEqual(calls[2].extra, [{ containerID: 'pod4', ifname: 'eth0' }]);
});

test('no usable network config is FailedPrecondition naming the problem; a missing plugin is named too', async (t) => {
  const s = setup('1.0.0', [{ type: 'missing-plugin' }]);
  t.after(() => removeDir(s.dir));
  await assert.rejects(s.make().setUp(ctx, req('pod5')), (e: unknown) => e instanceof CricketError && e.code === 'FailedPrecondition' && /missing-plugin/.test(e.message));
  writeFileSync(join(s.conf, '10-fake.conflist'), '{"name": "x"}');
  await assert.rejects(s.make().setUp(ctx, req('pod6')), (e: unknown) => e instanceof CricketError && e.code === 'FailedPrecondition' && /10-fake\.conflist/.test(e.message));
});

test('when DEL after a failed ADD fails too, the attachment stays cached so a later teardown releases it', async (t) => {
  const s0 = setup('1.0.0', []);
  t.after(() => removeDir(s0.dir));
  const flag = join(s0.dir, 'del-fails');
  writeFileSync(flag, '');
  writeFileSync(
    join(s0.conf, '10-fake.conflist'),
    JSON.stringify({
      cniVersion: '1.0.0',
      name: 'fake',
      plugins: [
        { log: s0.log, type: 'one', addr: '10.0.0.7/24', failDelWhile: flag },
        { log: s0.log, type: 'two', addr: 'x', failOn: 'ADD' },
      ],
    }),
  );
  const m = s0.make();
  await assert.rejects(m.setUp(ctx, req('pod7')), /two ADD failed/);
  assert.equal(await m.hasAttachment('pod7'), true, 'kept for a retry');
  assert.deepEqual(await m.cachedPodIds(), ['pod7']);
  removeDir(flag);
  await m.tearDown(ctx, 'pod7');
  assert.equal(await m.hasAttachment('pod7'), false);
  assert.deepEqual(s0.calls().map((c) => `${c.cmd} ${c.type}`), ['ADD one', 'ADD two', 'DEL two', 'DEL one', 'DEL two', 'DEL one']);
});
