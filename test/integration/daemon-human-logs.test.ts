import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CRICKETD, removeDir, tempDir } from '../helpers/daemon.js';

// cricketd's log lines: readable on a terminal (make run), JSON otherwise (a service
// manager, a pipe). The terminal is a real pty from util-linux's script.

interface Run {
  out: string;
  err: string;
}

/** Daemon arguments for a run of its own: the two runs never share a socket or run root. */
function daemonArgs(dir: string, name: string): string[] {
  writeFileSync(join(dir, 'e.toml'), '');
  const d = join(dir, name);
  return ['--listen', join(d, 's.sock'), '--root', join(d, 'root'), '--run-root', join(d, 'run'), '--config', join(dir, 'e.toml'), '--config-dir', join(d, 'c.d')];
}

function runUntilReady(cmd: string, cmdArgs: string[]): Promise<Run> {
  return new Promise<Run>((resolve, reject) => {
    const child = spawn(cmd, cmdArgs, { stdio: ['pipe', 'pipe', 'pipe'] });
    const run: Run = { out: '', err: '' };
    child.stdout.on('data', (b: Buffer) => {
      run.out += b.toString();
      if (run.out.includes('cricketd ready')) child.kill('SIGTERM');
    });
    child.stderr.on('data', (b: Buffer) => (run.err += b.toString()));
    child.once('close', () => resolve(run));
    child.once('error', reject);
  });
}

/**
 * script(1) forwards SIGTERM to its child and may be gone before the daemon under it has
 * finished stopping (or the daemon may go with the terminal's hangup, leaving its pid
 * file): wait until the pid the daemon wrote is no longer alive, and make sure, should
 * it hang, that the test does not leave it behind.
 */
async function waitForExit(runRoot: string): Promise<void> {
  let pid: number;
  try {
    pid = Number.parseInt(readFileSync(join(runRoot, 'cricketd.pid'), 'utf8'), 10);
  } catch {
    return; // removed: the daemon finished its stop
  }
  const alive = () => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  for (let i = 0; i < 400 && alive(); i++) await sleep(25);
  if (alive()) process.kill(pid, 'SIGKILL');
}

test('cricketd prints human lines on a terminal and JSON in a pipe', async (t) => {
  const dir = tempDir('cricket-logs-');
  t.after(() => removeDir(dir));
  const humanArgs = daemonArgs(dir, 'tty');
  const human = await runUntilReady('script', ['-qefc', [CRICKETD, ...humanArgs].join(' '), '/dev/null']);
  await waitForExit(join(dir, 'tty', 'run'));
  assert.match(human.out, /^\[\d\d:\d\d:\d\d\.\d{3}\] \S*INFO\S*: \S*cricketd listening; recovering state/m, `on a terminal; stderr: ${human.err}`);
  assert.doesNotMatch(human.out, /"level":30/);
  const pipeArgs = daemonArgs(dir, 'pipe');
  const json = await runUntilReady(CRICKETD, pipeArgs);
  await waitForExit(join(dir, 'pipe', 'run'));
  const firstLine = json.out.split('\n')[0]!;
  assert.ok(firstLine.startsWith('{'), `in a pipe the first line is JSON; stdout: ${JSON.stringify(json.out.slice(0, 300))} stderr: ${json.err}`);
  const first = JSON.parse(firstLine) as { level: number; msg: string };
  assert.equal(first.level, 30);
  assert.equal(typeof first.msg, 'string');
});
