// The soak's own world: a temp dir holding the daemon's root, run root, socket, TMPDIR
// and log, pod log dirs, a private CNI bridge and /24 (pod-net.ts), a private cgroup
// parent, a loopback registry with the images the soak builds, and the daemon itself,
// which can be SIGKILLed and restarted on the same dirs. sweep() removes everything,
// whatever state the run ended in.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ensureCgroup } from '../../src/host/cgroups.js';
import { removeDir, startDaemon, tempDir, type TestDaemon } from '../helpers/daemon.js';
import { pushBusyboxImage, type PushedImage } from '../helpers/oci-image.js';
import { makeTestNet, type TestNet } from '../helpers/pod-net.js';
import { imagesConfigToml, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { killConmons, mountLines, removeCgroupTree } from '../integration/durability-env.js';

export const RUNC = '/usr/sbin/runc';

export class SoakEnv {
  readonly dir: string;
  readonly daemonDir: string;
  readonly logs: string;
  /** The daemon's TMPDIR: whatever it leaves there is its own leak. */
  readonly daemonTmp: string;
  /** Where the daemon writes a diagnostic report (V8 heap figures) on SIGUSR2. */
  readonly reportDir: string;
  readonly daemonLog: string;
  readonly net: TestNet;
  readonly cgroupRoot: string;
  reg: TestRegistry | undefined;
  /** The image every pod runs. */
  image: PushedImage | undefined;
  /** Images pulled and removed while nothing uses them. */
  extras: PushedImage[] = [];
  d: TestDaemon | undefined;
  readonly #toml: string[] = [];

  private constructor() {
    this.dir = tempDir('cricket-soak-');
    this.daemonDir = join(this.dir, 'daemon');
    this.logs = join(this.dir, 'logs');
    this.daemonTmp = join(this.dir, 'daemon-tmp');
    this.reportDir = join(this.dir, 'reports');
    this.daemonLog = join(this.dir, 'cricketd.log');
    for (const d of [this.daemonDir, this.logs, this.daemonTmp, this.reportDir]) mkdirSync(d, { recursive: true });
    this.net = makeTestNet(this.dir);
    this.cgroupRoot = `/cksoak${randomBytes(3).toString('hex')}`;
  }

  get root(): string {
    return join(this.daemonDir, 'root');
  }

  get runRoot(): string {
    return join(this.daemonDir, 'run');
  }

  /** Builds everything but the daemon; on failure the caller runs sweep(). */
  static async create(): Promise<SoakEnv> {
    const env = new SoakEnv();
    try {
      // Made once here (cpuset copied from its parent, as the daemon does), so no pod records it as its own.
      await ensureCgroup(env.cgroupRoot);
      env.reg = await startRegistry();
      env.image = await pushBusyboxImage(env.reg.host, 'soak/busybox', 'v1');
      // Two more images of a few MiB, never used by a pod: pulled and removed all along.
      for (const tag of ['v1', 'v2']) {
        env.extras.push(
          await pushBusyboxImage(env.reg.host, 'soak/extra', tag, {
            layers: [{ entries: [{ path: `data/${tag}.bin`, content: randomBytes(3 << 20) }], compression: 'gzip' }],
          }),
        );
      }
      env.#toml.push(
        imagesConfigToml(env.dir, env.reg.host),
        `[logs]\nallowed_roots = [${JSON.stringify(env.logs)}]`,
        `[network]\ncni_conf_dir = ${JSON.stringify(env.net.confDir)}`,
      );
    } catch (err) {
      await env.sweep();
      throw err;
    }
    return env;
  }

  /** Starts cricketd on the soak's dirs; resolves when Version answers (recovery may still run). */
  async startDaemon(): Promise<TestDaemon> {
    const nodeOptions = [
      process.env['NODE_OPTIONS'] ?? '',
      // Where a warning (MaxListenersExceeded, ...) comes from is worth its few lines.
      `--report-on-signal --report-signal=SIGUSR2 --report-compact --report-directory=${this.reportDir} --trace-warnings`,
    ].join(' ').trim();
    this.d = await startDaemon({
      dir: this.daemonDir,
      configToml: this.#toml.join('\n\n'),
      noWaitReady: true,
      logFile: this.daemonLog,
      env: { NODE_OPTIONS: nodeOptions, TMPDIR: this.daemonTmp },
    });
    return this.d;
  }

  /** The pid of cricketd's node process (the child is catatonit). */
  nodePid(): number {
    try {
      return Number(readFileSync(join(this.runRoot, 'cricketd.pid'), 'utf8').trim());
    } catch {
      return 0;
    }
  }

  /** SIGKILLs cricketd's node process and waits until it and its catatonit are gone. */
  async kill(): Promise<void> {
    const d = this.d;
    if (!d) return;
    const pid = this.nodePid();
    if (pid > 0) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    const child = d.child;
    const gone = new Promise<void>((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', () => r())));
    const t = setTimeout(() => child.kill('SIGKILL'), 3000);
    await gone;
    clearTimeout(t);
    while (pid > 0 && alive(pid)) await new Promise((r) => setTimeout(r, 20));
    d.client.close();
  }

  /** Every path under the root and run root (relative, "root/..." or "run/..."), directories marked with a trailing slash. */
  fileTree(): string[] {
    const out: string[] = [];
    const walk = (d: string) => {
      let names: string[];
      try {
        names = readdirSync(d);
      } catch {
        return;
      }
      for (const n of names) {
        const p = join(d, n);
        let dir = false;
        try {
          dir = lstatSync(p).isDirectory();
        } catch {
          continue;
        }
        out.push(relative(this.daemonDir, p) + (dir ? '/' : ''));
        if (dir) walk(p);
      }
    };
    walk(this.root);
    walk(this.runRoot);
    return out.sort();
  }

  /** Runc containers the daemon's runc root still knows. */
  runcContainers(): string[] {
    const runcRoot = join(this.runRoot, 'runc');
    if (!existsSync(runcRoot)) return [];
    return spawnSync(RUNC, ['--root', runcRoot, 'list', '-q'], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
  }

  /** iptables rules (filter and nat) naming the soak's network. */
  iptablesRules(): string[] {
    const out: string[] = [];
    for (const table of ['filter', 'nat']) {
      const rules = spawnSync('iptables', ['-w', '-t', table, '-S'], { encoding: 'utf8' }).stdout.split('\n');
      out.push(...rules.filter((r) => r.startsWith('-A ') && r.includes(this.net.name)).map((r) => `${table} ${r}`));
    }
    return out;
  }

  /** Removes everything the soak made, whatever the daemon left; safe to call twice. */
  async sweep(): Promise<void> {
    if (this.d) {
      this.d.client.close();
      await Promise.race([this.d.stop(), new Promise((r) => setTimeout(r, 15_000))]);
      if (this.d.child.exitCode === null && this.d.child.signalCode === null) await this.kill();
      this.d = undefined;
    }
    for (const id of this.runcContainers()) spawnSync(RUNC, ['--root', join(this.runRoot, 'runc'), 'delete', '--force', id]);
    killConmons(this.dir);
    for (const l of mountLines(this.dir).reverse()) spawnSync('umount', ['-l', l.split(' ')[4]!]);
    this.#removeIptablesRules();
    await this.reg?.stop();
    this.reg = undefined;
    this.net.destroy();
    removeCgroupTree(this.cgroupRoot);
    removeDir(this.dir);
  }

  /** Deletes rules naming the soak's network and then the CNI chains they jumped to. */
  #removeIptablesRules(): void {
    for (const table of ['filter', 'nat']) {
      const chains = new Set<string>();
      for (const line of this.iptablesRules().filter((l) => l.startsWith(`${table} `))) {
        const rule = line.slice(table.length + 1);
        const jump = / -j (CNI-[\w-]+)/.exec(rule);
        if (jump) chains.add(jump[1]!);
        // -S prints shell-quoted arguments (the comment): let a shell split them back.
        spawnSync('sh', ['-c', `iptables -w -t ${table} ${rule.replace(/^-A /, '-D ')}`]);
      }
      for (const c of chains) {
        spawnSync('iptables', ['-w', '-t', table, '-F', c]);
        spawnSync('iptables', ['-w', '-t', table, '-X', c]);
      }
    }
  }
}

export function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}
