// Shared set-up for the CLI tests (not a test file itself): a loopback registry with a
// busybox image, a daemon on a private CNI bridge, and `cricket` run as a person would
// run it: a child process with arguments, stdin and (where it matters) a terminal.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { CRICKET, removeDir, startDaemon, tempDir, type TestDaemon } from '../helpers/daemon.js';
import { pushBusyboxImage, type PushedImage } from '../helpers/oci-image.js';
import { makeTestNet, type TestNet } from '../helpers/pod-net.js';
import { imagesConfigToml, startRegistry, type TestRegistry } from '../helpers/registry.js';

export interface CliEnv {
  dir: string;
  logs: string;
  reg: TestRegistry;
  net: TestNet;
  d: TestDaemon;
  image: PushedImage;
  /** Runs `cricket -r <socket> ...args` to its end. */
  cli(args: string[], o?: { stdin?: string; env?: NodeJS.ProcessEnv }): Promise<CliResult>;
  /** Starts `cricket -r <socket> ...args` and leaves it running. */
  spawnCli(args: string[]): ChildProcess;
  /** Stops the daemon (SIGTERM; containers keep running) and starts it again on the same dirs. */
  restartDaemon(): Promise<void>;
  /** Runs the command line in a pseudo-terminal (util-linux script), `cols` wide. */
  inTerminal(args: string[], cols?: number): Promise<CliResult>;
  cleanup(): Promise<void>;
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export async function setUpCliEnv(
  opts: { registriesExtra?: (regHost: string) => string; beforeDaemon?: (regHost: string) => Promise<void>; extraToml?: (dir: string, logs: string) => string } = {},
): Promise<CliEnv> {
  const dir = tempDir('cricket-cli-');
  const logs = join(dir, 'logs');
  mkdirSync(logs, { recursive: true });
  const reg = await startRegistry();
  const net = makeTestNet(dir);
  let d: TestDaemon | undefined;
  try {
    const image = await pushBusyboxImage(reg.host, 'cli/busybox', 'v1');
    await opts.beforeDaemon?.(reg.host);
    const extra = opts.registriesExtra?.(reg.host);
    const toml = `${imagesConfigToml(dir, reg.host, extra !== undefined ? { extra } : {})}\n[logs]\nallowed_roots = [${JSON.stringify(logs)}]\n${opts.extraToml?.(dir, logs) ?? ''}`;
    const ddir = join(dir, 'daemon');
    mkdirSync(ddir);
    const daemonArgs = ['--cni-conf-dir', net.confDir];
    d = await startDaemon({ dir: ddir, configToml: toml, args: daemonArgs });
    let daemon = d;
    const base = ['-r', `unix://${daemon.socket}`];
    const env: CliEnv = {
      dir,
      logs,
      reg,
      net,
      d: daemon,
      image,
      cli: (args, o = {}) =>
        new Promise((resolve, reject) => {
          const child = spawn(CRICKET, [...base, ...args], { env: { ...process.env, ...o.env }, stdio: ['pipe', 'pipe', 'pipe'] });
          let stdout = '';
          let stderr = '';
          child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
          child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
          child.on('error', reject);
          child.on('close', (code) => resolve({ code, stdout, stderr }));
          child.stdin.end(o.stdin ?? '');
        }),
      async restartDaemon() {
        await daemon.stop();
        daemon.client.close();
        daemon = await startDaemon({ dir: ddir, configToml: toml, args: daemonArgs });
        env.d = daemon;
      },
      spawnCli: (args) => spawn(CRICKET, [...base, ...args], { stdio: ['pipe', 'pipe', 'pipe'] }),
      inTerminal: (args, cols = 100) =>
        new Promise((resolve, reject) => {
          const line = [CRICKET, ...base, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
          // script(1) gives the command a real pty; -e: its exit code; stty sets the width the CLI sees.
          const child = spawn('script', ['-qefc', `stty cols ${cols} rows 30; exec ${line}`, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
          let stdout = '';
          let stderr = '';
          child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
          child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
          child.on('error', reject);
          child.on('close', (code) => resolve({ code, stdout, stderr }));
        }),
      async cleanup() {
        try {
          for (const p of (await daemon.client.call('ListPodSandbox', {})).items) {
            await daemon.client.call('StopPodSandbox', { podSandboxId: p.id }).catch(() => {});
            await daemon.client.call('RemovePodSandbox', { podSandboxId: p.id }).catch(() => {});
          }
        } finally {
          await daemon.cleanup();
          net.destroy();
          await reg.stop();
          removeDir(dir);
        }
      },
    };
    return env;
  } catch (err) {
    await d?.cleanup();
    net.destroy();
    await reg.stop();
    removeDir(dir);
    throw err;
  }
}
