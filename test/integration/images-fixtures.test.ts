import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { CriCallError } from '../../src/client/cri-client.js';
import { startDaemon, tempDir, removeDir, type TestDaemon } from '../helpers/daemon.js';
import { pushBusyboxImage, pushIndex, type PushedImage } from '../helpers/oci-image.js';
import { imagesConfigToml, startRegistry, type TestRegistry } from '../helpers/registry.js';

// One registry and one daemon for the fixture images of issue 3; each test pulls
// its own repository so the tests do not depend on each other.

let reg: TestRegistry;
let d: TestDaemon;
let dir: string;

before(async () => {
  reg = await startRegistry();
  dir = tempDir();
  d = await startDaemon({ configToml: imagesConfigToml(dir, reg.host) });
});

after(async () => {
  await d?.cleanup();
  await reg?.stop();
  if (dir) removeDir(dir);
});

async function pull(ref: string): Promise<string> {
  return (await d.client.call('PullImage', { image: { image: ref } })).imageRef;
}

async function layerDirs(ref: string): Promise<string[]> {
  const st = await d.client.call('ImageStatus', { image: { image: ref }, verbose: true });
  return JSON.parse(st.info['info']!).layerDirs as string[];
}

test('a multi-arch OCI index and a Docker manifest list resolve to the linux/amd64 image', async () => {
  const amd = await pushBusyboxImage(reg.host, 'fx/multi', 'amd64', { Labels: { arch: 'amd64' } });
  const arm = await pushBusyboxImage(reg.host, 'fx/multi', 'arm64', { Labels: { arch: 'arm64' }, architecture: 'arm64' });
  const index = await pushIndex(reg.host, 'fx/multi', 'v1', [
    { image: arm, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
    { image: amd, platform: { os: 'linux', architecture: 'amd64' } },
  ]);
  assert.equal(process.arch, 'x64', 'these fixtures assume an amd64 host');
  assert.equal(await pull(`${reg.host}/fx/multi:v1`), amd.configDigest);
  const st = await d.client.call('ImageStatus', { image: { image: `${reg.host}/fx/multi:v1` } });
  // The repo digest is what the tag points at: the index.
  assert.deepEqual(st.image?.repoDigests, [`${reg.host}/fx/multi@${index}`]);

  const amdD = await pushBusyboxImage(reg.host, 'fx/multi-docker', 'amd64', { docker: true, Labels: { docker: 'yes' } });
  await pushIndex(reg.host, 'fx/multi-docker', 'v1', [{ image: amdD, platform: { os: 'linux', architecture: 'amd64' } }], true);
  assert.equal(await pull(`${reg.host}/fx/multi-docker:v1`), amdD.configDigest);

  const arm2 = await pushBusyboxImage(reg.host, 'fx/arm-only', 'arm64', { Labels: { arch: 'arm64' }, architecture: 'arm64' });
  await pushIndex(reg.host, 'fx/arm-only', 'v1', [{ image: arm2, platform: { os: 'linux', architecture: 'arm64' } }]);
  await assert.rejects(pull(`${reg.host}/fx/arm-only:v1`), (e: CriCallError) => e.code === status.NOT_FOUND && /linux\/amd64.*linux\/arm64/.test(e.details));
});

test('several tags: one image, RemoveImage of one tag only untags, the last removes, again is fine', async () => {
  const img = await pushBusyboxImage(reg.host, 'fx/tags', 'a', { extraTags: ['b', 'c'], Labels: { t: 'tags' } });
  for (const t of ['a', 'b', 'c']) assert.equal(await pull(`${reg.host}/fx/tags:${t}`), img.configDigest);
  const tags = (t: string) => `${reg.host}/fx/tags:${t}`;
  let st = await d.client.call('ImageStatus', { image: { image: img.configDigest } });
  assert.deepEqual([...st.image!.repoTags].sort(), [tags('a'), tags('b'), tags('c')]);

  await d.client.call('RemoveImage', { image: { image: tags('b') } });
  st = await d.client.call('ImageStatus', { image: { image: img.configDigest } });
  assert.deepEqual([...st.image!.repoTags].sort(), [tags('a'), tags('c')]);
  assert.equal((await d.client.call('ImageStatus', { image: { image: tags('b') } })).image, undefined);

  await d.client.call('RemoveImage', { image: { image: tags('a') } });
  await d.client.call('RemoveImage', { image: { image: tags('c') } });
  assert.equal((await d.client.call('ImageStatus', { image: { image: img.configDigest } })).image, undefined);
  await d.client.call('RemoveImage', { image: { image: tags('c') } });
  await d.client.call('RemoveImage', { image: { image: img.configDigest } });
  await assert.rejects(d.client.call('RemoveImage', { image: { image: '' } }), (e: CriCallError) => e.code === status.INVALID_ARGUMENT);
});

test('USER as a name reports username, USER as uid[:gid] reports uid', async () => {
  const named = await pushBusyboxImage(reg.host, 'fx/user-name', 'v1', { User: 'app' });
  const byUid = await pushBusyboxImage(reg.host, 'fx/user-uid', 'v1', { User: '1000:1000' });
  const none = await pushBusyboxImage(reg.host, 'fx/user-none', 'v1', { Labels: { user: 'none' } });
  await pull(named.ref);
  await pull(byUid.ref);
  await pull(none.ref);
  const a = (await d.client.call('ImageStatus', { image: { image: named.ref } })).image!;
  assert.equal(a.username, 'app');
  assert.equal(a.uid, undefined);
  const b = (await d.client.call('ImageStatus', { image: { image: byUid.ref } })).image!;
  assert.equal(b.username, '');
  assert.equal(b.uid?.value, 1000n);
  const c = (await d.client.call('ImageStatus', { image: { image: none.ref } })).image!;
  assert.equal(c.username, '');
  assert.equal(c.uid, undefined);
});

test('zstd and uncompressed layers unpack and match their diff ids', async () => {
  const img = await pushBusyboxImage(reg.host, 'fx/zstd', 'v1', {
    compression: 'zstd',
    layers: [{ entries: [{ path: 'etc/plain.txt', content: 'plain layer\n' }], compression: 'none' }],
  });
  assert.equal(img.layers[0]!.mediaType, 'application/vnd.oci.image.layer.v1.tar+zstd');
  await pull(img.ref);
  const [base, top] = await layerDirs(img.ref);
  assert.equal(statSync(join(base!, 'bin', 'busybox')).size, statSync('/bin/busybox').size);
  assert.equal(readFileSync(join(top!, 'etc', 'plain.txt'), 'utf8'), 'plain layer\n');
});

test('whiteouts and opaque dirs become overlay whiteouts; an overlay mount shows the result', async (t) => {
  const img = await pushBusyboxImage(reg.host, 'fx/whiteout', 'v1', {
    extraFiles: [
      { path: 'data/', type: 'directory' },
      { path: 'data/old1', content: 'old' },
      { path: 'data/sub/', type: 'directory' },
      { path: 'data/sub/old2', content: 'old' },
      { path: 'etc/remove-me', content: 'bye' },
    ],
    layers: [
      {
        entries: [
          { path: 'etc/.wh.remove-me', content: '' },
          { path: 'data/', type: 'directory', mode: 0o750 },
          { path: 'data/.wh..wh..opq', content: '' },
          { path: 'data/new', content: 'new' },
        ],
      },
    ],
  });
  await pull(img.ref);
  const [base, top] = await layerDirs(img.ref);
  const wh = lstatSync(join(top!, 'etc', 'remove-me'));
  assert.ok(wh.isCharacterDevice());
  assert.equal(wh.rdev, 0);
  assert.ok(!existsSync(join(top!, 'etc', '.wh.remove-me')));
  assert.ok(!existsSync(join(top!, 'data', '.wh..wh..opq')));
  const opaque = execFileSync('getfattr', ['--only-values', '-n', 'trusted.overlay.opaque', join(top!, 'data')], { encoding: 'utf8' });
  assert.equal(opaque, 'y');
  assert.equal(statSync(join(top!, 'data')).mode & 0o7777, 0o750);

  const mnt = join(dir, 'merged');
  mkdirSync(mnt, { recursive: true });
  execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${top}:${base}`, mnt]);
  t.after(() => execFileSync('umount', [mnt]));
  assert.ok(!existsSync(join(mnt, 'etc', 'remove-me')));
  assert.ok(existsSync(join(mnt, 'etc', 'passwd')));
  assert.deepEqual(readdirSync(join(mnt, 'data')), ['new']);
});

test('a hardlink stays one inode and a file capability survives', async () => {
  // v2 capability: effective, permitted = CAP_NET_RAW (bit 13).
  const cap = Buffer.from([1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  const img = await pushBusyboxImage(reg.host, 'fx/hardlink', 'v1', {
    layers: [
      {
        entries: [
          { path: 'usr/bin/pinger', content: '#!/bin/sh\necho ping\n', mode: 0o4755, uid: 1000, gid: 1000, xattrs: { 'security.capability': cap.toString('latin1') } },
          { path: 'usr/bin/pinger-link', type: 'link', linkname: 'usr/bin/pinger' },
          { path: 'dev/', type: 'directory' },
          { path: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 },
        ],
      },
    ],
  });
  await pull(img.ref);
  const top = (await layerDirs(img.ref))[1]!;
  const a = statSync(join(top, 'usr', 'bin', 'pinger'));
  const b = statSync(join(top, 'usr', 'bin', 'pinger-link'));
  assert.equal(a.ino, b.ino);
  assert.equal(a.nlink, 2);
  assert.equal(a.uid, 1000);
  assert.equal(a.mode & 0o7777, 0o4755);
  const hex = execFileSync('getfattr', ['-e', 'hex', '-n', 'security.capability', join(top, 'usr', 'bin', 'pinger')], { encoding: 'utf8' });
  assert.match(hex, new RegExp(`security.capability=0x${cap.toString('hex')}`));
  const dev = lstatSync(join(top, 'dev', 'null'));
  assert.ok(dev.isCharacterDevice());
  assert.equal(dev.rdev, (1 << 8) | 3);
});

test('hostile layers are refused, nothing lands outside the layer dir, nothing is recorded', async () => {
  const outside = join(dir, 'outside');
  mkdirSync(outside, { recursive: true });
  const passwdBefore = statSync('/etc/passwd');
  const cases: { name: string; entries: Parameters<typeof pushBusyboxImage>[3] }[] = [
    { name: 'traversal', entries: { layers: [{ entries: [{ path: `../../../../../../../../..${outside}/dotdot`, content: 'x' }] }] } },
    { name: 'absolute', entries: { layers: [{ entries: [{ path: `${outside}/absolute`, content: 'x' }] }] } },
    {
      name: 'symlink',
      entries: {
        layers: [
          {
            entries: [
              { path: 'escape', type: 'symlink', linkname: outside },
              { path: 'escape/through-symlink', content: 'x' },
            ],
          },
        ],
      },
    },
    { name: 'hardlink', entries: { layers: [{ entries: [{ path: 'pw', type: 'link', linkname: '../../../../../../etc/passwd' }] }] } },
    { name: 'hardlink-abs', entries: { layers: [{ entries: [{ path: 'pw', type: 'link', linkname: '/etc/passwd' }] }] } },
  ];
  const layersBefore = readdirSync(join(d.root, 'images', 'layers')).sort();
  const pushed: PushedImage[] = [];
  for (const c of cases) pushed.push(await pushBusyboxImage(reg.host, `fx/hostile-${c.name}`, 'v1', c.entries));
  for (const [i, img] of pushed.entries()) {
    await assert.rejects(pull(img.ref), (e: CriCallError) => {
      assert.equal(e.code, status.INVALID_ARGUMENT, e.message);
      assert.match(e.details, /refusing layer entry/, cases[i]!.name);
      return true;
    });
    assert.equal((await d.client.call('ImageStatus', { image: { image: img.ref } })).image, undefined);
  }
  assert.deepEqual(readdirSync(outside), []);
  const passwdAfter = statSync('/etc/passwd');
  assert.equal(passwdAfter.nlink, passwdBefore.nlink);
  assert.equal(passwdAfter.ino, passwdBefore.ino);
  // The shared busybox layer may have been unpacked; no hostile (or half-done) layer dir is left.
  const layersAfter = readdirSync(join(d.root, 'images', 'layers')).filter((n) => !layersBefore.includes(n));
  assert.ok(layersAfter.every((n) => /^[0-9a-f]{64}$/.test(n)), layersAfter.join(','));
  assert.ok(layersAfter.length <= 1, layersAfter.join(','));
});

test('a tag that moves to a new image leaves the old image untagged but present', async () => {
  const first = await pushBusyboxImage(reg.host, 'fx/moving', 'latest', { Labels: { gen: '1' } });
  assert.equal(await pull(first.ref), first.configDigest);
  const second = await pushBusyboxImage(reg.host, 'fx/moving', 'latest', { Labels: { gen: '2' } });
  assert.equal(await pull(second.ref), second.configDigest);
  const old = (await d.client.call('ImageStatus', { image: { image: first.configDigest } })).image!;
  assert.deepEqual(old.repoTags, []);
  assert.deepEqual(old.repoDigests, [`${reg.host}/fx/moving@${first.digest}`]);
  assert.equal((await d.client.call('ImageStatus', { image: { image: first.ref } })).image?.id, second.configDigest);
  // By digest the old one is still reachable, and pulling by digest records no tag.
  assert.equal(await pull(`${reg.host}/fx/moving@${first.digest}`), first.configDigest);
  assert.deepEqual((await d.client.call('ImageStatus', { image: { image: first.configDigest } })).image!.repoTags, []);
});
