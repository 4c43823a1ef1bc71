import assert from 'node:assert/strict';
import { existsSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { startDaemon, tempDir, removeDir } from '../helpers/daemon.js';
import { pushBusyboxImage } from '../helpers/oci-image.js';
import { imagesConfigToml, startRegistry } from '../helpers/registry.js';

test('PullImage fetches a busybox image from the loopback registry; ImageStatus and ListImages report it', async (t) => {
  const reg = await startRegistry();
  t.after(() => reg.stop());
  const dir = tempDir();
  t.after(() => removeDir(dir));
  const img = await pushBusyboxImage(reg.host, 'test/busybox', 'v1', { Cmd: ['sh'], User: 'app', extraTags: ['v2'] });
  const d = await startDaemon({ configToml: `${imagesConfigToml(dir, reg.host)}pinned_images = ["${reg.host}/test/busybox:v1"]\n` });
  t.after(() => d.cleanup());

  const res = await d.client.call('PullImage', { image: { image: img.ref } });
  assert.equal(res.imageRef, img.configDigest);

  const st = await d.client.call('ImageStatus', { image: { image: img.ref }, verbose: true });
  assert.equal(st.image?.id, img.configDigest);
  assert.deepEqual(st.image?.repoTags, [img.ref]);
  assert.deepEqual(st.image?.repoDigests, [`${reg.host}/test/busybox@${img.digest}`]);
  assert.equal(st.image?.username, 'app');
  assert.equal(st.image?.pinned, true);
  assert.equal(st.image?.uid, undefined);
  assert.ok(Number(st.image?.size) > 500_000);
  const info = JSON.parse(st.info['info']!);
  assert.deepEqual(info.imageSpec.config.Cmd, ['sh']);

  // The unpacked layer holds the rootfs with ownership and links intact.
  const layerDir: string = info.layerDirs[0];
  assert.ok(layerDir.startsWith(join(d.root, 'images', 'layers')));
  assert.equal(readlinkSync(join(layerDir, 'bin', 'sh')), 'busybox');
  assert.match(readFileSync(join(layerDir, 'etc', 'passwd'), 'utf8'), /^app:x:1000:1000/m);
  assert.equal(statSync(join(layerDir, 'home', 'app')).uid, 1000);
  assert.equal(statSync(join(layerDir, 'tmp')).mode & 0o7777, 0o1777);
  assert.equal(statSync(join(layerDir, 'bin', 'busybox')).mode & 0o777, 0o755);

  // By id, id prefix and digest reference too; a missing image is an empty answer.
  for (const ref of [img.configDigest, img.configDigest.slice(7, 19), `${reg.host}/test/busybox@${img.digest}`]) {
    assert.equal((await d.client.call('ImageStatus', { image: { image: ref } })).image?.id, img.configDigest, ref);
  }
  assert.equal((await d.client.call('ImageStatus', { image: { image: `${reg.host}/test/busybox:v2` } })).image, undefined);
  const other = await pushBusyboxImage(reg.host, 'test/other', 'v1', { Labels: { other: 'yes' } });
  await d.client.call('PullImage', { image: { image: other.ref } });
  const list = await d.client.call('ListImages', {});
  assert.deepEqual(list.images.map((i) => [i.id, i.pinned]), [
    [img.configDigest, true],
    [other.configDigest, false],
  ]);
  assert.ok(existsSync(join(d.root, 'images', 'records', `${img.configDigest.slice(7)}.json`)));
});
