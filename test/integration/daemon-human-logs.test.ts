import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CRICKETD, removeDir, tempDir } from '../helpers/daemon.js';

// cricketd's log lines: readable on a terminal (make run), JSON otherwise (a service
// manager, a pipe). The terminal is a real pty from util-linux's script.

test('cricketd prints human lines on a terminal and JSON in a pipe', async (t) => {
  const dir = tempDir('cricket-logs-');
  t.after(() => removeDir(dir));
  writeFileSync(join(dir, 'e.toml'), '');
  const args = ['--listen', join(dir, 's.sock'), '--root', join(dir, 'root'), '--run-root', join(dir, 'run'), '--config', join(dir, 'e.toml'), '--config-dir', join(dir, 'c.d')];
  const runUntilReady = (cmd: string, cmdArgs: string[]) =>
    new Promise<string>((resolve, reject) => {
      const child = spawn(cmd, cmdArgs, { stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (b: Buffer) => {
        out += b.toString();
        if (out.includes('cricketd ready')) child.kill('SIGTERM');
      });
      child.once('close', () => resolve(out));
      child.once('error', reject);
    });
  const human = await runUntilReady('script', ['-qefc', [CRICKETD, ...args].join(' '), '/dev/null']);
  assert.match(human, /^\[\d\d:\d\d:\d\d\.\d{3}\] \S*INFO\S*: \S*cricketd listening; recovering state/m);
  assert.doesNotMatch(human, /"level":30/);
  const json = await runUntilReady(CRICKETD, args);
  const first = JSON.parse(json.split('\n')[0]!) as { level: number; msg: string };
  assert.equal(first.level, 30);
  assert.equal(typeof first.msg, 'string');
});
