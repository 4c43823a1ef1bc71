import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import type { CriCallError } from '../../src/client/cri-client.js';
import { startDaemon, tempDir, removeDir, type TestDaemon } from '../helpers/daemon.js';
import { pushBusyboxImage } from '../helpers/oci-image.js';
import { freePort, imagesConfigToml, startRegistry, startRegistryProxy, type TestRegistry } from '../helpers/registry.js';

// Registry-facing behaviour: auth challenges, mirrors and search registries from
// registries.conf, RegistryUnavailable, digest verification, shared downloads.

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

async function daemonWith(t: { after: (fn: () => Promise<void>) => void }, name: string, conf: string): Promise<TestDaemon> {
  const sub = join(dir, name);
  execFileSync('mkdir', ['-p', sub]);
  const d = await startDaemon({ configToml: conf.replace('@DIR@', sub) });
  t.after(() => d.cleanup());
  return d;
}

test('bearer-token and basic auth with AuthConfig credentials; secrets never reach logs or disk', async (t) => {
  const img = await pushBusyboxImage(reg.host, 'auth/busybox', 'v1', { Labels: { auth: 'yes' } });
  const secret = 'S3cret-Passw0rd-xyz';
  const identity = 'refresh-Token-123';
  const registryToken = 'preset-Token-456';
  const bearer = await startRegistryProxy(reg.host, {
    auth: { mode: 'bearer', username: 'alice', password: secret, identityToken: identity, registryToken },
  });
  t.after(() => bearer.stop());
  const basic = await startRegistryProxy(reg.host, { auth: { mode: 'basic', username: 'bob', password: secret } });
  t.after(() => basic.stop());
  const sub = join(dir, 'auth');
  execFileSync('mkdir', ['-p', sub]);
  const d = await daemonWith(t, 'auth', `[daemon]\nlog_level = "debug"\n${imagesConfigToml(sub, reg.host)}`);

  // Without credentials both refuse: RegistryUnavailable (gRPC UNKNOWN).
  for (const p of [bearer, basic]) {
    await assert.rejects(
      d.client.call('PullImage', { image: { image: `${p.host}/auth/busybox:v1` } }),
      (e: CriCallError) => e.code === status.UNKNOWN && e.details.startsWith('RegistryUnavailable'),
    );
  }
  const viaBearer = await d.client.call('PullImage', {
    image: { image: `${bearer.host}/auth/busybox:v1` },
    auth: { username: 'alice', password: secret },
  });
  assert.equal(viaBearer.imageRef, img.configDigest);
  assert.ok(bearer.tokenRequests.includes(`Basic ${Buffer.from(`alice:${secret}`).toString('base64')}`));
  // The token is cached for its scope: pulling again asks the token service nothing.
  const asked = bearer.tokenRequests.length;
  await d.client.call('PullImage', { image: { image: `${bearer.host}/auth/busybox:v1` }, auth: { username: 'alice', password: secret } });
  assert.equal(bearer.tokenRequests.length, asked);
  // An identity token is exchanged as an OAuth2 refresh token; a registry token is used as is.
  await d.client.call('PullImage', { image: { image: `${bearer.host}/auth/busybox:v1` }, auth: { identityToken: identity } });
  assert.equal(bearer.tokenRequests.at(-1), `refresh:${identity}`);
  const before = bearer.tokenRequests.length;
  await d.client.call('PullImage', { image: { image: `${bearer.host}/auth/busybox:v1` }, auth: { registryToken } });
  assert.equal(bearer.tokenRequests.length, before);
  const viaBasic = await d.client.call('PullImage', {
    image: { image: `${basic.host}/auth/busybox:v1` },
    auth: { auth: Buffer.from(`bob:${secret}`).toString('base64') },
  });
  assert.equal(viaBasic.imageRef, img.configDigest);
  await assert.rejects(
    d.client.call('PullImage', { image: { image: `${bearer.host}/auth/busybox:v1` }, auth: { username: 'alice', password: 'wrong' } }),
    (e: CriCallError) => e.code === status.UNKNOWN && /^RegistryUnavailable/.test(e.details) && !e.details.includes('wrong'),
  );
  const encoded = Buffer.from(`bob:${secret}`).toString('base64');
  assert.ok(!d.output().includes(secret));
  assert.ok(!d.output().includes(identity));
  assert.ok(!d.output().includes(registryToken));
  assert.ok(!d.output().includes(encoded));
  const onDisk = spawnSync('grep', ['-rlF', '-e', secret, '-e', encoded, '-e', identity, '-e', registryToken, d.root], { encoding: 'utf8' });
  assert.equal(onDisk.status, 1, `secret found in ${onDisk.stdout}`);
});

test('mirrors serve docker.io and registry.k8s.io names; short names use unqualified-search-registries', async (t) => {
  const a = await pushBusyboxImage(reg.host, 'library/mirrored', 'v1', { Labels: { m: 'docker' } });
  const b = await pushBusyboxImage(reg.host, 'e2e-test-images/thing', '1.0', { Labels: { m: 'k8s' } });
  const c = await pushBusyboxImage(reg.host, 'team/searched', 'latest', { Labels: { m: 'search' } });
  const sub = join(dir, 'mirror');
  execFileSync('mkdir', ['-p', sub]);
  const deadPort = await freePort();
  const d = await daemonWith(
    t,
    'mirror',
    imagesConfigToml(sub, reg.host, {
      mirrorFor: ['docker.io', 'registry.k8s.io'],
      top: `unqualified-search-registries = ["127.0.0.1:${deadPort}", "${reg.host}"]`,
      extra: [
        '[[registry]]',
        'location = "blocked.example.com"',
        'blocked = true',
      ].join('\n'),
    }),
  );
  assert.equal((await d.client.call('PullImage', { image: { image: 'docker.io/library/mirrored:v1' } })).imageRef, a.configDigest);
  assert.equal((await d.client.call('PullImage', { image: { image: 'registry.k8s.io/e2e-test-images/thing:1.0' } })).imageRef, b.configDigest);
  const st = await d.client.call('ImageStatus', { image: { image: 'registry.k8s.io/e2e-test-images/thing:1.0' } });
  assert.deepEqual(st.image?.repoTags, ['registry.k8s.io/e2e-test-images/thing:1.0']);
  // The dead search registry is skipped; the second one has it.
  assert.equal((await d.client.call('PullImage', { image: { image: 'team/searched' } })).imageRef, c.configDigest);
  assert.deepEqual((await d.client.call('ImageStatus', { image: { image: 'team/searched' } })).image?.repoTags, [
    `${reg.host}/team/searched:latest`,
  ]);
  await assert.rejects(
    d.client.call('PullImage', { image: { image: 'blocked.example.com/x/y:1' } }),
    (e: CriCallError) => e.code === status.UNKNOWN && /^RegistryUnavailable: .*blocked/.test(e.details),
  );
  await assert.rejects(
    d.client.call('PullImage', { image: { image: `127.0.0.1:${deadPort}/x/y:1` } }),
    (e: CriCallError) => e.code === status.UNKNOWN && e.details.startsWith('RegistryUnavailable'),
  );
  await assert.rejects(d.client.call('PullImage', { image: { image: 'Bad Name!' } }), (e: CriCallError) => e.code === status.INVALID_ARGUMENT);
  await assert.rejects(
    d.client.call('PullImage', { image: { image: `${reg.host}/no/such:tag` } }),
    (e: CriCallError) => e.code === status.NOT_FOUND,
  );
});

test('a blob that does not match its digest fails the pull and leaves nothing behind', async (t) => {
  const img = await pushBusyboxImage(reg.host, 'corrupt/busybox', 'v1', {
    layers: [{ entries: [{ path: 'etc/corrupt-me', content: 'x'.repeat(1000) }] }],
  });
  const bad = img.layers[1]!.digest;
  const proxy = await startRegistryProxy(reg.host, { corruptBlob: bad });
  t.after(() => proxy.stop());
  const sub = join(dir, 'corrupt');
  execFileSync('mkdir', ['-p', sub]);
  const d = await daemonWith(t, 'corrupt', imagesConfigToml(sub, reg.host));
  await assert.rejects(
    d.client.call('PullImage', { image: { image: `${proxy.host}/corrupt/busybox:v1` } }),
    (e: CriCallError) => e.code === status.INVALID_ARGUMENT && /does not match its digest/.test(e.details),
  );
  const blobs = readdirSync(join(d.root, 'images', 'blobs', 'sha256'));
  assert.ok(!blobs.includes(bad.slice(7)));
  assert.deepEqual(readdirSync(join(d.root, 'images', 'ingest')), []);
  assert.deepEqual((await d.client.call('ListImages', {})).images, []);

  // A manifest that is not what the registry (by tag) or the reference (by digest) says.
  const badManifests = await startRegistryProxy(reg.host, { corruptManifests: true });
  t.after(() => badManifests.stop());
  for (const ref of [`${badManifests.host}/corrupt/busybox:v1`, `${badManifests.host}/corrupt/busybox@${img.digest}`]) {
    await assert.rejects(
      d.client.call('PullImage', { image: { image: ref } }),
      (e: CriCallError) => e.code === status.INVALID_ARGUMENT && /does not match/.test(e.details),
      ref,
    );
  }
  assert.deepEqual((await d.client.call('ListImages', {})).images, []);
});

test('a registry sending endless data for a blob or a manifest is cut off at the declared or bounded size', async (t) => {
  const img = await pushBusyboxImage(reg.host, 'endless/busybox', 'v1', {
    layers: [{ entries: [{ path: 'etc/endless', content: 'e'.repeat(5000) }] }],
  });
  const layer = img.layers[1]!.digest;
  const sub = join(dir, 'endless');
  execFileSync('mkdir', ['-p', sub]);
  const d = await daemonWith(t, 'endless', imagesConfigToml(sub, reg.host));
  const endlessBlob = await startRegistryProxy(reg.host, { endless: { blob: layer } });
  t.after(() => endlessBlob.stop());
  await assert.rejects(
    d.client.call('PullImage', { image: { image: `${endlessBlob.host}/endless/busybox:v1` } }),
    (e: CriCallError) => e.code === status.INVALID_ARGUMENT && /larger than the \d+ bytes its descriptor says/.test(e.details),
  );
  const endlessManifest = await startRegistryProxy(reg.host, { endless: { manifests: true } });
  t.after(() => endlessManifest.stop());
  await assert.rejects(
    d.client.call('PullImage', { image: { image: `${endlessManifest.host}/endless/busybox:v1` } }),
    (e: CriCallError) => e.code === status.INVALID_ARGUMENT && /larger than \d+ bytes/.test(e.details),
  );
  assert.ok(!readdirSync(join(d.root, 'images', 'blobs', 'sha256')).includes(layer.slice(7)));
  assert.deepEqual(readdirSync(join(d.root, 'images', 'ingest')), []);
  assert.deepEqual((await d.client.call('ListImages', {})).images, []);
  // The daemon's memory stayed bounded: it is still serving, and the honest registry works.
  assert.equal((await d.client.call('PullImage', { image: { image: img.ref } })).imageRef, img.configDigest);
});

test('concurrent pulls of one image share one download of each blob, at most max_concurrent_downloads at once', async (t) => {
  const img = await pushBusyboxImage(reg.host, 'shared/busybox', 'v1', {
    layers: [1, 2, 3, 4, 5].map((i) => ({ entries: [{ path: `etc/layer-${i}`, content: `layer ${i}\n`.repeat(1000 * i) }] })),
  });
  const proxy = await startRegistryProxy(reg.host);
  t.after(() => proxy.stop());
  const sub = join(dir, 'shared');
  execFileSync('mkdir', ['-p', sub]);
  const d = await daemonWith(t, 'shared', `${imagesConfigToml(sub, reg.host)}max_concurrent_downloads = 2\n`);
  const ref = `${proxy.host}/shared/busybox:v1`;
  const ids = await Promise.all([1, 2, 3, 4].map(() => d.client.call('PullImage', { image: { image: ref } })));
  assert.deepEqual(new Set(ids.map((r) => r.imageRef)), new Set([img.configDigest]));
  for (const l of img.layers) assert.equal(proxy.hits.get(`/v2/shared/busybox/blobs/${l.digest}`), 1, l.digest);
  assert.equal(proxy.hits.get(`/v2/shared/busybox/blobs/${img.configDigest}`), 1);
  assert.ok(proxy.maxBlobsInFlight() >= 1 && proxy.maxBlobsInFlight() <= 2, `${proxy.maxBlobsInFlight()} blob downloads at once`);
  // Present already: a second pull fetches the manifest only.
  await d.client.call('PullImage', { image: { image: ref } });
  for (const l of img.layers) assert.equal(proxy.hits.get(`/v2/shared/busybox/blobs/${l.digest}`), 1);
});

test('a download that stops making progress fails as RegistryUnavailable and leaves no partial blob', async (t) => {
  const img = await pushBusyboxImage(reg.host, 'stall/busybox', 'v1', {
    layers: [{ entries: [{ path: 'etc/big', content: Buffer.alloc(300_000, 7) }] }],
  });
  const stalled = img.layers[1]!.digest;
  const proxy = await startRegistryProxy(reg.host, { stallBlob: stalled });
  t.after(() => proxy.stop());
  const sub = join(dir, 'stall');
  execFileSync('mkdir', ['-p', sub]);
  const d = await daemonWith(t, 'stall', `${imagesConfigToml(sub, reg.host)}pull_progress_timeout_seconds = 1\n`);
  await assert.rejects(
    d.client.call('PullImage', { image: { image: `${proxy.host}/stall/busybox:v1` } }),
    (e: CriCallError) => e.code === status.UNKNOWN && /^RegistryUnavailable: download of sha256:/.test(e.details),
  );
  assert.ok(!readdirSync(join(d.root, 'images', 'blobs', 'sha256')).includes(stalled.slice(7)));
  assert.deepEqual(readdirSync(join(d.root, 'images', 'ingest')), []);
  assert.deepEqual((await d.client.call('ListImages', {})).images, []);
  // The same image straight from the registry completes.
  assert.equal((await d.client.call('PullImage', { image: { image: img.ref } })).imageRef, img.configDigest);
});

test('a loopback registry speaking TLS with a self-signed certificate is pulled over HTTPS', async (t) => {
  const img = await pushBusyboxImage(reg.host, 'tls/busybox', 'v1', { Labels: { tls: 'yes' } });
  const tls = await startRegistry({ tls: true, shareDataWith: reg });
  t.after(() => tls.stop());
  const sub = join(dir, 'tls');
  execFileSync('mkdir', ['-p', sub]);
  // No [[registry]] entry for it: loopback is trusted without verification, as docker does.
  const d = await daemonWith(t, 'tls', `[images]\nregistries_conf = "${join(sub, 'none.conf')}"\nregistries_conf_dir = "${join(sub, 'none.d')}"\n`);
  assert.equal((await d.client.call('PullImage', { image: { image: `${tls.host}/tls/busybox:v1` } })).imageRef, img.configDigest);
  // The same registry over plain HTTP would not answer: it really was TLS.
  await assert.rejects(fetch(`http://${tls.host}/v2/`).then((r) => (r.ok ? Promise.resolve() : Promise.reject(new Error(String(r.status))))));
});
