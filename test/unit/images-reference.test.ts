import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CricketError } from '../../src/core/errors.js';
import { formatReference, parseReference, withDomain } from '../../src/registry/reference.js';
import { candidates } from '../../src/services/images/image-store.js';
import { choosePlatform, parseImageConfig, parseManifest } from '../../src/registry/manifest.js';
import { credentialsFromAuth, isLoopback, parseChallenge } from '../../src/registry/registry-client.js';

const D = 'sha256:' + 'a'.repeat(64);

test('references normalise like kubelet and crictl', () => {
  const cases: [string, string][] = [
    ['busybox', 'docker.io/library/busybox:latest'],
    ['busybox:1.36', 'docker.io/library/busybox:1.36'],
    ['library/busybox', 'docker.io/library/busybox:latest'],
    ['team/app', 'docker.io/team/app:latest'],
    ['index.docker.io/library/busybox', 'docker.io/library/busybox:latest'],
    ['registry.k8s.io/pause:3.9', 'registry.k8s.io/pause:3.9'],
    ['localhost/app', 'localhost/app:latest'],
    ['127.0.0.1:5000/a/b/c:v1', '127.0.0.1:5000/a/b/c:v1'],
    [`busybox@${D}`, `docker.io/library/busybox@${D}`],
    [`quay.io/x/y:tag@${D}`, `quay.io/x/y:tag@${D}`],
    ['a__b-c/e.f_g--h', 'docker.io/a__b-c/e.f_g--h:latest'],
  ];
  for (const [input, want] of cases) assert.equal(formatReference(parseReference(input)), want, input);
  assert.equal(parseReference('busybox').shortName, true);
  assert.equal(parseReference('quay.io/x/y').shortName, false);
});

test('malformed references are InvalidArgument with the reason', () => {
  const bad: [string, RegExp][] = [
    ['', /empty/],
    ['Busybox', /lowercase/],
    ['a b', /whitespace/],
    ['busybox:', /tag/],
    ['busybox:-x', /tag/],
    ['busybox@sha256:abc', /digest/],
    ['busybox@sha256:' + 'A'.repeat(64), /64 lowercase hex/],
    ['a//b', /path component/],
    ['a/b/', /path component/],
    ['-a', /path component/],
    ['host:99999999999x/a', /path component|registry host|tag/],
    ['a'.repeat(64), /image id/],
  ];
  for (const [input, why] of bad) {
    assert.throws(() => parseReference(input), (e: CricketError) => e.code === 'InvalidArgument' && why.test(e.message), input);
  }
});

test('short names expand to the search registries; docker.io drops library/ elsewhere', () => {
  const r = parseReference('busybox:1');
  assert.deepEqual(candidates(r, ['quay.io', 'docker.io']).map(formatReference), [
    'docker.io/library/busybox:1',
    'quay.io/busybox:1',
  ]);
  assert.equal(formatReference(withDomain(parseReference('team/app'), 'example.com')), 'example.com/team/app:latest');
  assert.deepEqual(candidates(parseReference('quay.io/a/b'), ['x.io']).map(formatReference), ['quay.io/a/b:latest']);
});

test('manifests: index and image parse, schema1 is refused, platform choice follows variant rules', () => {
  const desc = (arch: string, variant?: string, os = 'linux') => ({
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    digest: 'sha256:' + Buffer.from(`${os}${arch}${variant ?? ''}`).toString('hex').padEnd(64, '0').slice(0, 64),
    size: 10,
    platform: { os, architecture: arch, ...(variant ? { variant } : {}) },
  });
  const idx = parseManifest('application/vnd.oci.image.index.v1+json', Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [desc('arm', 'v6'), desc('arm', 'v7'), desc('arm64'), desc('amd64', undefined, 'windows'), desc('amd64')] })));
  assert.equal(idx.kind, 'index');
  if (idx.kind !== 'index') return;
  assert.equal(choosePlatform(idx.manifests, { os: 'linux', architecture: 'amd64' })?.platform?.os, 'linux');
  assert.equal(choosePlatform(idx.manifests, { os: 'linux', architecture: 'arm', variant: 'v7' })?.platform?.variant, 'v7');
  assert.equal(choosePlatform(idx.manifests, { os: 'linux', architecture: 'arm', variant: 'v8' })?.platform?.variant, 'v7');
  assert.equal(choosePlatform(idx.manifests, { os: 'linux', architecture: 'arm64', variant: 'v8' })?.platform?.architecture, 'arm64');
  assert.equal(choosePlatform(idx.manifests, { os: 'linux', architecture: 's390x' }), undefined);

  assert.throws(
    () => parseManifest('application/vnd.docker.distribution.manifest.v1+prettyjws', Buffer.from('{"schemaVersion":1,"fsLayers":[]}')),
    /schema 1/,
  );
  assert.throws(() => parseManifest('x', Buffer.from('{"schemaVersion":2,"config":{"digest":"nope","size":1},"layers":[]}')), /digest/);
  const img = parseManifest('', Buffer.from(JSON.stringify({ schemaVersion: 2, config: { digest: D, size: 3 }, layers: [{ digest: D, size: 5 }] })));
  assert.equal(img.kind, 'image');
  assert.throws(() => parseImageConfig(Buffer.from(JSON.stringify({ rootfs: { diff_ids: [D, D] } })), 1), /2 layers but the manifest has 1/);
});

test('WWW-Authenticate challenges and AuthConfig credentials', () => {
  assert.deepEqual(parseChallenge('Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull"'), {
    scheme: 'bearer',
    params: { realm: 'https://auth.example.com/token', service: 'registry.example.com', scope: 'repository:a/b:pull' },
  });
  assert.deepEqual(parseChallenge('Basic realm="x"'), { scheme: 'basic' });
  assert.equal(parseChallenge('Negotiate'), undefined);
  assert.deepEqual(credentialsFromAuth({ username: '', password: '', auth: Buffer.from('u:p:q').toString('base64'), identityToken: '', registryToken: '' }), {
    username: 'u',
    password: 'p:q',
  });
  assert.deepEqual(credentialsFromAuth(undefined), {});
  assert.ok(isLoopback('127.0.0.1:5000') && isLoopback('localhost') && isLoopback('[::1]:80'));
  assert.ok(!isLoopback('10.0.0.1:5000'));
});
