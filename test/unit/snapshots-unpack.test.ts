import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { CricketError } from '../../src/core/errors.js';
import { realLayerFs } from '../../src/host/layer-fs.js';
import { entryComponents, classifyWhiteout } from '../../src/snapshots/layer-path.js';
import { sniffCompression, unpackLayer } from '../../src/snapshots/unpack-layer.js';
import { buildTar, sha256, type LayerEntry } from '../helpers/oci-image.js';

// Real files, real xattrs and mknod (the suite runs as root), no daemon.

function scratch(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'cricket-unpack-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function unpack(dir: string, entries: LayerEntry[], compress: 'gzip' | 'none' | 'zstd' = 'gzip') {
  const raw = await buildTar(entries);
  let blob = raw;
  if (compress === 'gzip') blob = gzipSync(raw);
  if (compress === 'zstd') blob = execFileSync('zstd', ['-q', '-c', '-'], { input: raw });
  const blobPath = join(dir, `blob-${Math.random().toString(16).slice(2)}`);
  writeFileSync(blobPath, blob);
  const dest = join(dir, `layer-${Math.random().toString(16).slice(2)}`);
  mkdirSync(dest);
  const result = await unpackLayer({ blobPath, destDir: dest, expectedDiffId: sha256(raw), fs: realLayerFs, signal: new AbortController().signal });
  return { dest, result, blobPath };
}

test('entry names: ".." and absolute paths are refused, "./" prefixes are fine, whiteouts are classified', () => {
  assert.deepEqual(entryComponents('./a//b/./c/'), ['a', 'b', 'c']);
  assert.deepEqual(entryComponents('./'), []);
  for (const bad of ['../x', 'a/../../x', 'a/..', '/etc/passwd', 'a\0b']) {
    assert.throws(() => entryComponents(bad), (e: CricketError) => e.code === 'InvalidArgument' && /refusing layer entry/.test(e.message), bad);
  }
  assert.deepEqual(classifyWhiteout('.wh..wh..opq'), { kind: 'opaque' });
  assert.deepEqual(classifyWhiteout('.wh.foo'), { kind: 'whiteout', target: 'foo' });
  assert.deepEqual(classifyWhiteout('.wh..wh.plnk'), { kind: 'meta' });
  assert.deepEqual(classifyWhiteout('foo.wh.'), { kind: 'none' });
  assert.throws(() => classifyWhiteout('.wh..'), /names no file/);
});

test('metadata survives: owners, modes, mtimes (dirs too), symlinks, fifos, replaced entries', async (t) => {
  const dir = scratch(t);
  const old = new Date('2001-02-03T04:05:06Z');
  const { dest, result } = await unpack(dir, [
    { path: 'd/', type: 'directory', mode: 0o2775, uid: 7, gid: 8, mtime: old },
    { path: 'd/f', content: 'hello', mode: 0o640, uid: 1000, gid: 1001, mtime: old },
    { path: 'd/s', type: 'symlink', linkname: '/nowhere/absolute', mtime: old },
    { path: 'd/p', type: 'fifo', mode: 0o600 },
    { path: 'd/replace', content: 'first' },
    { path: 'd/replace', content: 'second' },
    { path: 'd/was-dir/', type: 'directory' },
    { path: 'd/was-dir/child', content: 'c' },
    { path: 'd/was-dir', content: 'now a file' },
    { path: 'implicit/parent/file', content: 'x' },
  ]);
  assert.equal(result.entries, 10);
  const d = statSync(join(dest, 'd'));
  assert.equal(d.mode & 0o7777, 0o2775);
  assert.equal(d.uid, 7);
  assert.equal(d.mtime.getTime(), old.getTime());
  const f = statSync(join(dest, 'd', 'f'));
  assert.deepEqual([f.mode & 0o7777, f.uid, f.gid, f.mtime.getTime()], [0o640, 1000, 1001, old.getTime()]);
  assert.equal(readlinkSync(join(dest, 'd', 's')), '/nowhere/absolute');
  assert.equal(lstatSync(join(dest, 'd', 's')).mtime.getTime(), old.getTime());
  assert.ok(lstatSync(join(dest, 'd', 'p')).isFIFO());
  assert.equal(readFileSync(join(dest, 'd', 'replace'), 'utf8'), 'second');
  assert.equal(readFileSync(join(dest, 'd', 'was-dir'), 'utf8'), 'now a file');
  assert.equal(readFileSync(join(dest, 'implicit', 'parent', 'file'), 'utf8'), 'x');
});

test('gzip, zstd and plain tar are recognised by their bytes; a wrong diff id fails', async (t) => {
  const dir = scratch(t);
  for (const c of ['gzip', 'zstd', 'none'] as const) {
    const { dest, blobPath } = await unpack(dir, [{ path: 'x', content: `via ${c}` }], c);
    assert.equal(await sniffCompression(blobPath), c);
    assert.equal(readFileSync(join(dest, 'x'), 'utf8'), `via ${c}`);
  }
  const raw = await buildTar([{ path: 'x', content: 'y' }]);
  const blobPath = join(dir, 'mismatch');
  writeFileSync(blobPath, raw);
  mkdirSync(join(dir, 'mm'));
  await assert.rejects(
    unpackLayer({ blobPath, destDir: join(dir, 'mm'), expectedDiffId: sha256('other'), fs: realLayerFs, signal: new AbortController().signal }),
    /does not match the image config/,
  );
  writeFileSync(blobPath, Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), Buffer.alloc(100, 7)]));
  mkdirSync(join(dir, 'bad-zstd'));
  await assert.rejects(unpackLayer({ blobPath, destDir: join(dir, 'bad-zstd'), fs: realLayerFs, signal: new AbortController().signal }));
});

test('binary xattrs from GNU tar survive byte for byte; a layer cannot set overlay markers', async (t) => {
  const dir = scratch(t);
  const src = join(dir, 'src');
  mkdirSync(src);
  writeFileSync(join(src, 'tool'), 'bin');
  // v2 capability, every permitted bit set: bytes >= 0x80 that UTF-8 decoding would mangle.
  const cap = Buffer.from('01000002ffffffff00000000ffffffff00000000', 'hex');
  execFileSync('setfattr', ['-n', 'security.capability', '-v', `0x${cap.toString('hex')}`, join(src, 'tool')]);
  execFileSync('setfattr', ['-n', 'user.note', '-v', 'hi there', join(src, 'tool')]);
  mkdirSync(join(src, 'sneaky'));
  execFileSync('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', join(src, 'sneaky')]);
  const blobPath = join(dir, 'gnu.tar');
  execFileSync('tar', ['--xattrs', '--xattrs-include=*', '-C', src, '-cf', blobPath, 'tool', 'sneaky']);
  const dest = join(dir, 'out');
  mkdirSync(dest);
  await unpackLayer({ blobPath, destDir: dest, fs: realLayerFs, signal: new AbortController().signal });
  const got = execFileSync('getfattr', ['-e', 'hex', '-n', 'security.capability', join(dest, 'tool')], { encoding: 'utf8' });
  assert.match(got, new RegExp(`=0x${cap.toString('hex')}`));
  assert.equal(execFileSync('getfattr', ['--only-values', '-n', 'user.note', join(dest, 'tool')], { encoding: 'utf8' }), 'hi there');
  const sneaky = execFileSync('getfattr', ['-d', '-m', '-', join(dest, 'sneaky')], { encoding: 'utf8' });
  assert.doesNotMatch(sneaky, /trusted\.overlay/);
});

test('hostile layers are refused and nothing outside the layer dir changes', async (t) => {
  const dir = scratch(t);
  const outside = join(dir, 'outside');
  mkdirSync(outside);
  writeFileSync(join(outside, 'victim'), 'original');
  const cases: [string, LayerEntry[], RegExp][] = [
    ['dotdot', [{ path: '../outside/victim', content: 'pwned' }], /\.\./],
    ['deep dotdot', [{ path: 'a/b/../../../outside/new', content: 'pwned' }], /\.\./],
    ['absolute', [{ path: `${outside}/new`, content: 'pwned' }], /absolute/],
    ['through symlink', [{ path: 'esc', type: 'symlink', linkname: outside }, { path: 'esc/new', content: 'pwned' }], /through the symlink/],
    ['through nested symlink', [{ path: 'a/', type: 'directory' }, { path: 'a/esc', type: 'symlink', linkname: '../../outside' }, { path: 'a/esc/victim', content: 'pwned' }], /through the symlink/],
    ['whiteout through symlink', [{ path: 'esc', type: 'symlink', linkname: outside }, { path: 'esc/.wh.victim', content: '' }], /through the symlink/],
    ['opaque through symlink', [{ path: 'esc', type: 'symlink', linkname: outside }, { path: 'esc/.wh..wh..opq', content: '' }], /through the symlink/],
    ['hardlink dotdot', [{ path: 'h', type: 'link', linkname: '../outside/victim' }], /outside the layer/],
    ['hardlink absolute', [{ path: 'h', type: 'link', linkname: `${outside}/victim` }], /outside the layer/],
    ['hardlink via symlink', [{ path: 'esc', type: 'symlink', linkname: outside }, { path: 'h', type: 'link', linkname: 'esc/victim' }], /through a symlink/],
    ['hardlink to missing', [{ path: 'h', type: 'link', linkname: 'nope' }], /not in this layer/],
  ];
  for (const [name, entries, why] of cases) {
    await assert.rejects(unpack(dir, entries), (e: CricketError) => {
      assert.equal(e.code, 'InvalidArgument', `${name}: ${e.message}`);
      assert.match(e.message, why, name);
      return true;
    });
  }
  assert.deepEqual(readdirSync(outside), ['victim']);
  assert.equal(readFileSync(join(outside, 'victim'), 'utf8'), 'original');
  assert.equal(statSync(join(outside, 'victim')).nlink, 1);
  // Replacing a planted symlink with a file writes a new file, never through the link.
  const { dest } = await unpack(dir, [
    { path: 'link', type: 'symlink', linkname: join(outside, 'victim') },
    { path: 'link', content: 'inside' },
  ]);
  assert.equal(readFileSync(join(dest, 'link'), 'utf8'), 'inside');
  assert.equal(readFileSync(join(outside, 'victim'), 'utf8'), 'original');
  assert.ok(!existsSync(join(dir, 'new')));
});
