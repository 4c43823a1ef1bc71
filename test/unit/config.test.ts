import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'smol-toml';
import { loadConfig } from '../../src/config/load.js';
import { renderDefaults } from '../../src/config/defaults-doc.js';
import { defaultConfig } from '../../src/config/schema.js';
import { removeDir, tempDir } from '../helpers/daemon.js';

function setup(files: Record<string, string>) {
  const dir = tempDir('cricket-config-');
  mkdirSync(join(dir, 'conf.d'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

test('no file at all gives the defaults, with a runc handler', (t) => {
  const dir = setup({});
  t.after(() => removeDir(dir));
  const cfg = loadConfig({ file: join(dir, 'none.toml'), dir: join(dir, 'conf.d'), fileRequired: false, overrides: {} });
  assert.equal(cfg.daemon.listen, '/run/cricket/cricket.sock');
  assert.equal(cfg.runtime.cgroup_driver, 'cgroupfs');
  assert.equal(cfg.runtime.handlers['runc']?.path, '/usr/sbin/runc');
  assert.ok(Object.isFrozen(cfg.daemon));
});

test('drop-ins merge over the main file in name order, flags over both', (t) => {
  const dir = setup({
    'main.toml': '[daemon]\nlog_level = "debug"\nroot = "/srv/a"\n[runtime.handlers.crun]\npath = "/usr/bin/crun"\n',
    'conf.d/20-b.toml': '[daemon]\nroot = "/srv/b"\n',
    'conf.d/10-a.toml': '[daemon]\nroot = "/srv/ignored"\nrun_root = "/run/x"\n',
    'conf.d/notes.txt': 'not toml at all',
  });
  t.after(() => removeDir(dir));
  const cfg = loadConfig({
    file: join(dir, 'main.toml'),
    dir: join(dir, 'conf.d'),
    fileRequired: true,
    overrides: { daemon: { run_root: '/run/flag', listen: undefined } },
  });
  assert.equal(cfg.daemon.log_level, 'debug');
  assert.equal(cfg.daemon.root, '/srv/b');
  assert.equal(cfg.daemon.run_root, '/run/flag');
  assert.deepEqual(Object.keys(cfg.runtime.handlers).sort(), ['crun', 'runc']);
});

const bad: [string, string, RegExp][] = [
  ['unknown key', '[daemon]\nlisten_on = "/x"\n', /main\.toml: .*daemon\.listen_on/],
  ['wrong type', '[images]\nmax_concurrent_downloads = "many"\n', /main\.toml: key images\.max_concurrent_downloads/],
  ['relative path', '[daemon]\nroot = "var/lib"\n', /key daemon\.root: must be an absolute path/],
  ['bad enum', '[runtime]\ncgroup_driver = "cgroupv3"\n', /key runtime\.cgroup_driver/],
  ['invalid TOML', '[daemon\n', /main\.toml: invalid TOML/],
  ['unknown default handler', '[runtime]\ndefault_handler = "kata"\n', /default_handler "kata" is not a configured handler/],
];
for (const [name, text, re] of bad) {
  test(`a bad file is refused naming file, key and reason: ${name}`, (t) => {
    const dir = setup({ 'main.toml': text });
    t.after(() => removeDir(dir));
    assert.throws(
      () => loadConfig({ file: join(dir, 'main.toml'), dir: join(dir, 'conf.d'), fileRequired: true, overrides: {} }),
      (err: Error) => re.test(err.message),
    );
  });
}

test('an error in a drop-in names the drop-in', (t) => {
  const dir = setup({ 'conf.d/50-x.toml': '[network]\ncni_bin_dirs = []\n' });
  t.after(() => removeDir(dir));
  assert.throws(
    () => loadConfig({ file: join(dir, 'none.toml'), dir: join(dir, 'conf.d'), fileRequired: false, overrides: {} }),
    /50-x\.toml: key network\.cni_bin_dirs/,
  );
});

test('a --config file that does not exist is an error', (t) => {
  const dir = setup({});
  t.after(() => removeDir(dir));
  assert.throws(
    () => loadConfig({ file: join(dir, 'missing.toml'), dir: join(dir, 'conf.d'), fileRequired: true, overrides: {} }),
    /missing\.toml: cannot read/,
  );
});

test('the printed defaults parse back to the defaults and document every key', () => {
  const text = renderDefaults();
  assert.deepEqual(JSON.parse(JSON.stringify(parse(text))), JSON.parse(JSON.stringify(defaultConfig())));
  for (const [section, values] of Object.entries(defaultConfig())) {
    for (const key of Object.keys(values)) {
      const idx = text.indexOf(`\n${key} = `) >= 0 ? text.indexOf(`\n${key} = `) : text.indexOf(`[${section}.${key}`);
      assert.ok(idx > 0, `${section}.${key} is printed`);
      const before = text.slice(0, idx).trimEnd().split('\n').pop() ?? '';
      assert.match(before, /^#/, `${section}.${key} has a comment above it`);
    }
  }
});
