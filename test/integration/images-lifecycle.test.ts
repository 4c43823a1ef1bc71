import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { ConfigSchema } from '../../src/config/schema.js';
import { backgroundContext } from '../../src/core/context.js';
import { CricketError } from '../../src/core/errors.js';
import { createImages } from '../../src/services/images/area.js';
import { startDaemon, tempDir, removeDir } from '../helpers/daemon.js';
import { pushBusyboxImage } from '../helpers/oci-image.js';
import { imagesConfigToml, startRegistry, startRegistryProxy, type TestRegistry } from '../helpers/registry.js';

let reg: TestRegistry;
let dir: string;

before(async () => {
  reg = await startRegistry();
  dir = tempDir();
});

after(async () => {
  await reg?.stop();
  if (dir) removeDir(dir);
});

const blobsOf = (root: string) => readdirSync(join(root, 'images', 'blobs', 'sha256')).sort();
const layersOf = (root: string) => readdirSync(join(root, 'images', 'layers')).sort();

test('records survive a restart; RemoveImage garbage-collects what no image uses; ImageFsInfo follows', async (t) => {
  const shared = [{ entries: [{ path: 'etc/shared', content: 'same in both\n'.repeat(2000) }] }];
  const a = await pushBusyboxImage(reg.host, 'life/a', 'v1', { layers: [...shared, { entries: [{ path: 'etc/a', content: 'a' }] }] });
  const b = await pushBusyboxImage(reg.host, 'life/b', 'v1', { layers: [...shared, { entries: [{ path: 'etc/b', content: 'b' }] }] });
  const ddir = join(dir, 'restart');
  const conf = imagesConfigToml(mkdtempSync(join(dir, 'conf-')), reg.host);
  let d = await startDaemon({ dir: mkdtempSync(ddir), configToml: conf });
  const daemonDir = d.dir;
  t.after(() => d.cleanup().then(() => removeDir(daemonDir)));

  const empty = (await d.client.call('ImageFsInfo', {})).imageFilesystems[0]!;
  await d.client.call('PullImage', { image: { image: a.ref } });
  await d.client.call('PullImage', { image: { image: b.ref } });
  const full = (await d.client.call('ImageFsInfo', {})).imageFilesystems[0]!;
  assert.equal(full.fsId?.mountpoint, join(d.root, 'images'));
  const layerBytes = [...a.layers, ...b.layers].reduce((n, l) => n + l.size, 0);
  assert.ok(full.usedBytes!.value > empty.usedBytes!.value + BigInt(layerBytes), `${full.usedBytes!.value}`);
  assert.ok(full.inodesUsed!.value > empty.inodesUsed!.value + 300n);
  // base + shared layer are common: 2 + 2 own = 4 layer dirs.
  assert.equal(layersOf(d.root).length, 4);

  await d.stop();
  d = await startDaemon({ dir: daemonDir, configToml: conf });
  const st = await d.client.call('ImageStatus', { image: { image: a.ref }, verbose: true });
  assert.equal(st.image?.id, a.configDigest);
  assert.ok(JSON.parse(st.info['info']!).layerDirs.every((p: string) => existsSync(p)));
  assert.equal((await d.client.call('ListImages', {})).images.length, 2);
  const streamed = [];
  for await (const m of d.client.stream('StreamImages', { filter: { image: { image: b.ref } } })) streamed.push(...m.images);
  assert.deepEqual(streamed.map((i) => i.id), [b.configDigest]);

  await d.client.call('RemoveImage', { image: { image: a.ref } });
  assert.equal(layersOf(d.root).length, 3);
  for (const l of a.layers.slice(1)) assert.equal(blobsOf(d.root).includes(l.digest.slice(7)), l === a.layers[2] ? false : true);
  assert.ok(!blobsOf(d.root).includes(a.configDigest.slice(7)));
  await d.client.call('RemoveImage', { image: { image: b.configDigest } });
  assert.deepEqual(layersOf(d.root), []);
  assert.deepEqual(blobsOf(d.root), []);
  const after = (await d.client.call('ImageFsInfo', {})).imageFilesystems[0]!;
  assert.ok(after.usedBytes!.value < full.usedBytes!.value - BigInt(layerBytes));
});

test('lookup() gives containers layer dirs lowest first and the run config; a retained image cannot be removed', async (t) => {
  const img = await pushBusyboxImage(reg.host, 'life/run', 'v1', {
    Entrypoint: ['/bin/sh', '-c'],
    Cmd: ['echo hi'],
    Env: ['PATH=/bin', 'A=1'],
    WorkingDir: '/tmp',
    StopSignal: 'SIGUSR1',
    User: 'app',
    layers: [{ entries: [{ path: 'etc/top', content: 'top' }] }],
  });
  const root = join(dir, 'area-root');
  const confDir = tempDir();
  t.after(() => removeDir(confDir));
  imagesConfigToml(confDir, reg.host);
  const config = ConfigSchema.parse({
    daemon: { root },
    images: { registries_conf: join(confDir, 'registries.conf'), registries_conf_dir: join(confDir, 'registries.conf.d') },
  });
  const log = pino({ level: 'silent' });
  const area = await createImages({ config, log });
  t.after(() => area.close());
  const ctx = backgroundContext(log, 'test');
  await area.recover(ctx);
  const pull = area.handlers.PullImage!;
  const remove = area.handlers.RemoveImage!;
  const res = await pull(ctx, { image: { image: img.ref, annotations: {}, userSpecifiedImage: '', runtimeHandler: '', imageRef: '' }, auth: undefined, sandboxConfig: undefined });
  assert.equal(res.imageRef, img.configDigest);

  const local = area.lookup(img.ref)!;
  assert.equal(local.id, img.configDigest);
  assert.equal(area.lookup(img.configDigest.slice(7, 20))?.id, img.configDigest);
  assert.equal(area.lookup(`${reg.host}/life/run@${img.digest}`)?.id, img.configDigest);
  assert.equal(area.lookup(`${reg.host}/life/other:v1`), undefined);
  assert.equal(local.layerDirs.length, 2);
  assert.ok(existsSync(join(local.layerDirs[0]!, 'bin', 'busybox')));
  assert.ok(existsSync(join(local.layerDirs[1]!, 'etc', 'top')));
  assert.deepEqual(local.config.Entrypoint, ['/bin/sh', '-c']);
  assert.deepEqual(local.config.Cmd, ['echo hi']);
  assert.deepEqual(local.config.Env, ['PATH=/bin', 'A=1']);
  assert.equal(local.config.WorkingDir, '/tmp');
  assert.equal(local.config.StopSignal, 'SIGUSR1');
  assert.equal(local.config.User, 'app');

  const spec = (image: string) => ({ image: { image, annotations: {}, userSpecifiedImage: '', runtimeHandler: '', imageRef: '' } });
  area.retain(img.configDigest, 'c1');
  area.retain(img.configDigest, 'c2');
  await assert.rejects(remove(ctx, spec(img.ref)), (e: CricketError) => e.code === 'FailedPrecondition' && /in use by 2 container/.test(e.message));
  area.release(img.configDigest, 'c1');
  await assert.rejects(remove(ctx, spec(img.configDigest)), (e: CricketError) => e.code === 'FailedPrecondition');
  assert.ok(area.lookup(img.ref));
  area.release(img.configDigest, 'c2');
  area.release(img.configDigest, 'c2');
  await remove(ctx, spec(img.configDigest));
  assert.equal(area.lookup(img.ref), undefined);
  assert.ok(!existsSync(local.layerDirs[1]!));
});

test('a removed image is pulled afresh and unpacked again; nonsense ids get an empty status', async (t) => {
  const img = await pushBusyboxImage(reg.host, 'life/again', 'v1', { Labels: { again: '1' } });
  const confDir = tempDir();
  t.after(() => removeDir(confDir));
  const ddir = mkdtempSync(join(dir, 'again-'));
  const conf = imagesConfigToml(confDir, reg.host);
  let d = await startDaemon({ dir: ddir, configToml: conf });
  t.after(() => d.cleanup().then(() => removeDir(ddir)));
  await d.client.call('PullImage', { image: { image: img.ref } });
  await d.client.call('RemoveImage', { image: { image: img.ref } });
  assert.deepEqual((await d.client.call('ListImages', {})).images, []);
  assert.equal((await d.client.call('PullImage', { image: { image: img.ref } })).imageRef, img.configDigest);
  const st = await d.client.call('ImageStatus', { image: { image: img.ref }, verbose: true });
  assert.ok(JSON.parse(st.info['info']!).layerDirs.every((p: string) => existsSync(join(p, 'etc', 'passwd'))));
  for (const nonsense of ['sha256:zz', 'ffff', 'no/such:image', 'Bad Ref!']) {
    assert.equal((await d.client.call('ImageStatus', { image: { image: nonsense } })).image, undefined, nonsense);
  }
  // A layer dir deleted behind the daemon's back: after a restart the image is
  // forgotten (kubelet pulls it again) rather than offered half-present.
  const layerDir = JSON.parse(st.info['info']!).layerDirs[0] as string;
  await d.stop();
  removeDir(layerDir);
  d = await startDaemon({ dir: ddir, configToml: conf });
  assert.equal((await d.client.call('ImageStatus', { image: { image: img.ref } })).image, undefined);
  assert.equal((await d.client.call('PullImage', { image: { image: img.ref } })).imageRef, img.configDigest);
  assert.ok(existsSync(join(layerDir, 'etc', 'passwd')));
});

test('a daemon killed in the middle of a download restarts with no partial blob, no record, and pulls again', async (t) => {
  const img = await pushBusyboxImage(reg.host, 'life/crash', 'v1', {
    layers: [{ entries: [{ path: 'etc/big', content: Buffer.alloc(400_000, 3) }] }],
  });
  const stalled = img.layers[1]!.digest;
  const proxy = await startRegistryProxy(reg.host, { stallBlob: stalled });
  t.after(() => proxy.stop());
  const confDir = tempDir();
  t.after(() => removeDir(confDir));
  const conf = imagesConfigToml(confDir, reg.host);
  const ddir = mkdtempSync(join(dir, 'crash-'));
  const first = await startDaemon({ dir: ddir, configToml: conf });
  const pulling = first.client.call('PullImage', { image: { image: `${proxy.host}/life/crash:v1` } }).catch((e: unknown) => e);
  // Wait until the stalled blob is being written to the ingest area.
  const ingest = join(first.root, 'images', 'ingest');
  while (!readdirSync(ingest).some((n) => n.startsWith(stalled.slice(7)))) await new Promise((r) => setTimeout(r, 20));
  const pid = Number(readFileSync(join(first.runRoot, 'cricketd.pid'), 'utf8'));
  process.kill(pid, 'SIGKILL');
  await new Promise((r) => first.child.once('exit', r));
  first.client.close();
  await pulling;

  const second = await startDaemon({ dir: ddir, configToml: conf });
  t.after(() => second.cleanup().then(() => removeDir(ddir)));
  assert.deepEqual(readdirSync(join(second.root, 'images', 'ingest')), []);
  // What the dead pull had finished (manifest, config, base layer) belongs to no image: swept at start.
  assert.deepEqual(blobsOf(second.root), []);
  assert.deepEqual(layersOf(second.root), []);
  assert.deepEqual((await second.client.call('ListImages', {})).images, []);
  assert.equal((await second.client.call('PullImage', { image: { image: img.ref } })).imageRef, img.configDigest);
});
