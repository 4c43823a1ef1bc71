import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { CriClient } from '../../src/client/cri-client.js';

// The checkout root, from dist/test/helpers/ after the build.
export const REPO_ROOT = resolve(new URL('../../..', import.meta.url).pathname);
export const CRICKETD = join(REPO_ROOT, 'bin', 'cricketd');
export const CRICKET = join(REPO_ROOT, 'bin', 'cricket');

/** Under make test-vm (qemu without KVM) everything is several times slower: waits and timeouts a test sets are scaled by this. */
export const TIMEOUT_SCALE = Number(process.env['CRICKET_TEST_TIMEOUT_SCALE'] ?? '1') || 1;

export interface TestDaemon {
  dir: string;
  socket: string;
  root: string;
  runRoot: string;
  child: ChildProcess;
  client: CriClient;
  /** Everything the daemon printed so far (stdout and stderr). */
  output(): string;
  /** SIGTERM and wait for exit; returns the exit code. */
  stop(): Promise<number | null>;
  /** Stops the daemon if still running and removes its dirs. */
  cleanup(): Promise<void>;
}

export interface StartOptions {
  /** TOML written to <dir>/cricket.toml and passed with --config. */
  configToml?: string;
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** Reuse an existing dir (restart tests); else a fresh temp dir. */
  dir?: string;
  /** Resolve as soon as Version answers, before recovery ends (default: wait until Status answers). */
  noWaitReady?: boolean;
  /** Append the daemon's stdout and stderr to this file instead of holding them in memory (long runs); output() returns its last 64 KiB. */
  logFile?: string;
}

/**
 * Starts the real cricketd from bin/ on a private socket, root and run root, so a
 * test never touches a daemon a person is running. Resolves when Version answers.
 */
export async function startDaemon(opts: StartOptions = {}): Promise<TestDaemon> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'cricket-test-'));
  const socket = join(dir, 'cricket.sock');
  const root = join(dir, 'root');
  const runRoot = join(dir, 'run');
  const args = ['--listen', socket, '--root', root, '--run-root', runRoot, '--config-dir', join(dir, 'conf.d')];
  if (opts.configToml !== undefined) {
    writeFileSync(join(dir, 'cricket.toml'), opts.configToml);
    args.push('--config', join(dir, 'cricket.toml'));
  } else {
    args.push('--config', join(dir, 'absent.toml'));
    writeFileSync(join(dir, 'absent.toml'), '');
  }
  args.push(...(opts.args ?? []));
  // make test-vm runs the suites once per cgroup driver: a drop-in sets it for every daemon.
  const driver = process.env['CRICKET_TEST_CGROUP_DRIVER'];
  if (driver) {
    mkdirSync(join(dir, 'conf.d'), { recursive: true });
    writeFileSync(join(dir, 'conf.d', '00-test-cgroup-driver.toml'), `[runtime]\ncgroup_driver = "${driver}"\n`);
  }
  // make test-vm keeps every test daemon's output in its results (CRICKET_TEST_DAEMON_LOGS=dir).
  const logDir = process.env['CRICKET_TEST_DAEMON_LOGS'];
  if (opts.logFile === undefined && logDir) {
    mkdirSync(logDir, { recursive: true });
    opts = { ...opts, logFile: join(logDir, `${dir.split('/').filter(Boolean).join('_')}.log`) };
  }
  const logFd = opts.logFile !== undefined ? openSync(opts.logFile, 'a') : undefined;
  const child = spawn(CRICKETD, args, { env: { ...process.env, ...opts.env }, stdio: ['ignore', logFd ?? 'pipe', logFd ?? 'pipe'] });
  if (logFd !== undefined) closeSync(logFd);
  let out = '';
  child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (out += b.toString()));
  const output = () => (opts.logFile !== undefined ? readFileSync(opts.logFile, 'utf8').slice(-65536) : out);
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const client = new CriClient(`unix://${socket}`);
  // Under make test-vm (qemu without KVM) node alone takes seconds to start: the VM scales these waits.
  const scale = TIMEOUT_SCALE;
  const deadline = Date.now() + 20_000 * scale;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`cricketd exited with ${child.exitCode}: ${output()}`);
    if (existsSync(socket)) {
      try {
        await client.call('Version', {}, { timeoutMs: 1000 });
        break;
      } catch {
        // not yet
      }
    }
    if (Date.now() > deadline) throw new Error(`cricketd did not answer within ${20 * scale} s: ${output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  // Version answers during recovery; everything else is UNAVAILABLE until it ends.
  while (!opts.noWaitReady) {
    if (child.exitCode !== null) throw new Error(`cricketd exited with ${child.exitCode}: ${output()}`);
    try {
      await client.call('Status', {}, { timeoutMs: 1000 });
      break;
    } catch {
      // still recovering
    }
    if (Date.now() > deadline + 40_000 * scale) throw new Error(`cricketd did not finish recovery within ${60 * scale} s: ${output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    child.kill('SIGTERM');
    return exited;
  };
  return {
    dir,
    socket,
    root,
    runRoot,
    child,
    client,
    output,
    stop,
    async cleanup() {
      client.close();
      await stop();
      if (!opts.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Runs cricketd expecting it to exit by itself (bad flags, bad config). */
export function runDaemonToExit(args: string[], timeoutMs = 15_000): Promise<{ code: number | null; stderr: string; stdout: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(CRICKETD, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`cricketd ${args.join(' ')} did not exit: ${stdout}${stderr}`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, stderr, stdout });
    });
  });
}

export function tempDir(prefix = 'cricket-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
