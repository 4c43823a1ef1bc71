import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CricketError } from '../../src/core/errors.js';
import { pullCandidates } from '../../src/services/images/puller.js';
import { parseReference, formatReference } from '../../src/registry/reference.js';
import { emptyRegistriesConf, endpointsFor, loadRegistriesConf, mergeInto } from '../../src/registry/registries-conf.js';

const D = 'sha256:' + 'b'.repeat(64);

function conf(text: string) {
  const c = emptyRegistriesConf();
  mergeInto(c, text, 'test.conf');
  return c;
}

test('mirrors come first, the longest prefix wins, locations rewrite the path', () => {
  const c = conf(`
unqualified-search-registries = ["docker.io", "quay.io"]

[[registry]]
prefix = "docker.io"
location = "docker.io"
[[registry.mirror]]
location = "127.0.0.1:5000"
insecure = true
[[registry.mirror]]
location = "mirror.example.com/dockerhub"
pull-from-mirror = "digest-only"

[[registry]]
prefix = "docker.io/team"
location = "internal.example.com/team-copy"
insecure = true

[[registry]]
location = "*.corp.example"
blocked = true
`);
  assert.deepEqual(c.unqualifiedSearch, ['docker.io', 'quay.io']);
  const byTag = endpointsFor(c, parseReference('busybox:1'));
  assert.deepEqual(byTag.endpoints, [
    { host: '127.0.0.1:5000', path: 'library/busybox', insecure: true, mirror: true },
    { host: 'registry-1.docker.io', path: 'library/busybox', insecure: false, mirror: false },
  ]);
  const byDigest = endpointsFor(c, parseReference(`busybox@${D}`));
  assert.deepEqual(byDigest.endpoints.map((e) => `${e.host}/${e.path}`), [
    '127.0.0.1:5000/library/busybox',
    'mirror.example.com/dockerhub/library/busybox',
    'registry-1.docker.io/library/busybox',
  ]);
  assert.deepEqual(endpointsFor(c, parseReference('team/app')).endpoints, [
    { host: 'internal.example.com', path: 'team-copy/app', insecure: true, mirror: false },
  ]);
  // "docker.io/teammate" must not match the "docker.io/team" prefix.
  assert.equal(endpointsFor(c, parseReference('teammate/app')).endpoints[0]!.host, '127.0.0.1:5000');
  assert.equal(endpointsFor(c, parseReference('x.corp.example/a:1')).blocked, true);
  assert.deepEqual(endpointsFor(c, parseReference('quay.io/a/b')).endpoints, [{ host: 'quay.io', path: 'a/b', insecure: false, mirror: false }]);
});

test('mirror-by-digest-only, v1 tables, aliases and short-name candidates', () => {
  const c = conf(`
[registries.search]
registries = ["registry.example.com"]
[registries.insecure]
registries = ["10.0.0.1:5000"]
[registries.block]
registries = ["evil.example.com"]
[aliases]
"pause" = "registry.k8s.io/pause"
`);
  assert.deepEqual(c.unqualifiedSearch, ['registry.example.com']);
  assert.equal(endpointsFor(c, parseReference('10.0.0.1:5000/a:1')).endpoints[0]!.insecure, true);
  assert.equal(endpointsFor(c, parseReference('evil.example.com/a:1')).blocked, true);
  assert.deepEqual(pullCandidates(parseReference('pause:3.9'), c).map(formatReference), ['registry.k8s.io/pause:3.9']);
  assert.deepEqual(pullCandidates(parseReference('busybox'), c).map(formatReference), ['registry.example.com/busybox:latest']);
  assert.deepEqual(pullCandidates(parseReference('busybox'), emptyRegistriesConf()).map(formatReference), ['docker.io/library/busybox:latest']);
  const d = conf(`
[[registry]]
prefix = "gcr.io"
location = "gcr.io"
mirror-by-digest-only = true
[[registry.mirror]]
location = "m.example.com"
`);
  assert.equal(endpointsFor(d, parseReference('gcr.io/a/b:1')).endpoints.length, 1);
  assert.equal(endpointsFor(d, parseReference(`gcr.io/a/b@${D}`)).endpoints.length, 2);
});

test('drop-in files override by prefix in name order; a missing file is an empty config; bad TOML names the file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cricket-regconf-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'd'));
  writeFileSync(join(dir, 'main.conf'), '[[registry]]\nlocation = "a.example.com"\ninsecure = true\n');
  writeFileSync(join(dir, 'd', '10-x.conf'), '[[registry]]\nlocation = "a.example.com"\nblocked = true\n');
  writeFileSync(join(dir, 'd', '20-y.conf'), 'unqualified-search-registries = ["b.example.com"]\n');
  writeFileSync(join(dir, 'd', 'ignored.txt'), 'not toml at all [[[');
  const c = await loadRegistriesConf(join(dir, 'main.conf'), join(dir, 'd'));
  assert.equal(c.registries.length, 1);
  assert.equal(c.registries[0]!.blocked, true);
  assert.deepEqual(c.unqualifiedSearch, ['b.example.com']);
  const none = await loadRegistriesConf(join(dir, 'absent.conf'), join(dir, 'absent.d'));
  assert.deepEqual(none.registries, []);
  writeFileSync(join(dir, 'd', '30-bad.conf'), '[[registry]\n');
  await assert.rejects(loadRegistriesConf(join(dir, 'main.conf'), join(dir, 'd')), (e: CricketError) => e.code === 'FailedPrecondition' && /30-bad\.conf/.test(e.message));
  assert.throws(() => conf('[[registry]]\ninsecure = true\n'), /prefix or a location/);
  assert.throws(() => conf('[[registry]]\nlocation = "x"\n[[registry.mirror]]\nlocation = "y"\npull-from-mirror = "sometimes"\n'), /pull-from-mirror/);
});
