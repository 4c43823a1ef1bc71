// Shared set-up for the durability tests (not a test file itself): a loopback registry
// with busybox, a private CNI network and cgroup root, failpoint wrappers in front of
// runc, conmon and every CNI plugin, a daemon that can be SIGKILLed and restarted on
// the same dirs, and an inventory of everything on the host that belongs to the test.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { NamespaceMode, type ContainerConfig, type DeepPartial, type PodSandboxConfig } from '../../src/gen/runtime/v1/api.js';
import { hierarchies } from '../../src/host/cgroups.js';
import { removeDir, startDaemon, tempDir, type TestDaemon } from '../helpers/daemon.js';
import { makeFailpoints, wrapCniDir, type Failpoints } from '../helpers/failpoint.js';
import { pushBusyboxImage, type PushedImage } from '../helpers/oci-image.js';
import { ipamReservations, makeTestNet, vethsOn, type TestNet } from '../helpers/pod-net.js';
import { imagesConfigToml, startRegistry, type TestRegistry } from '../helpers/registry.js';

export const RUNC = '/usr/sbin/runc';
export const CONMON = '/usr/bin/conmon';
export const CNI_DIR = '/usr/lib/cni';

export interface DurEnv {
  dir: string;
  daemonDir: string;
  logs: string;
  net: TestNet;
  reg: TestRegistry;
  image: PushedImage;
  /** Wrappers for runc and conmon (names "runc", "conmon"). */
  fp: Failpoints;
  /** Wrappers for every CNI plugin (e.g. "bridge"). */
  cni: Failpoints;
  /** Private cgroup parent (e.g. /ckdur1a2b3c) every pod of the test lives under. */
  cgroupRoot: string;
  d: TestDaemon;
  /** Starts the daemon again on the same dirs (after kill()); with `killAfterMs`, kills it that long after its socket answers (mid-recovery) and starts it once more. */
  restart(opts?: { killAfterMs?: number }): Promise<TestDaemon>;
  /** SIGKILLs cricketd's node process, then makes sure its catatonit parent is gone. */
  kill(): Promise<void>;
  podConfig(name: string): DeepPartial<PodSandboxConfig>;
  ctrConfig(name: string, cmd: string[]): DeepPartial<ContainerConfig>;
  /** Removes every pod (and so every container) the daemon lists. */
  removeAll(): Promise<void>;
  cleanup(): Promise<void>;
}

export interface EnvOptions {
  pluginTimeoutSeconds?: number;
  /** More TOML for the daemon's config (e.g. extra runtime handlers). */
  extraToml?: string;
}

export async function setUpDurEnv(opts: EnvOptions = {}): Promise<DurEnv> {
  const dir = tempDir('cricket-dur-');
  const logs = join(dir, 'logs');
  mkdirSync(logs, { recursive: true });
  const daemonDir = join(dir, 'daemon');
  mkdirSync(daemonDir);
  const net = makeTestNet(dir);
  const fp = makeFailpoints(join(dir, 'rt'), { runc: RUNC, conmon: CONMON });
  const cni = wrapCniDir(join(dir, 'cni'), CNI_DIR);
  const cgroupRoot = `/ckdur${randomBytes(3).toString('hex')}`;
  // The shared parent is made here, so no pod records it as its own to remove.
  for (const h of hierarchies()) mkdirSync(join(h, cgroupRoot), { recursive: true });
  const reg = await startRegistry();
  let d: TestDaemon | undefined;
  const toml = [
    imagesConfigToml(dir, reg.host),
    `[logs]\nallowed_roots = [${JSON.stringify(logs)}]`,
    `[runtime]\nconmon = ${JSON.stringify(fp.path('conmon'))}`,
    `[runtime.handlers.runc]\npath = ${JSON.stringify(fp.path('runc'))}`,
    `[network]\ncni_conf_dir = ${JSON.stringify(net.confDir)}\ncni_bin_dirs = [${JSON.stringify(cni.dir)}]\nplugin_timeout_seconds = ${opts.pluginTimeoutSeconds ?? 30}`,
    `[daemon]\nrecovery_item_timeout_seconds = 10`,
    opts.extraToml ?? '',
  ].join('\n\n');
  // startDaemon waits until recovery has ended unless told not to.
  const start = (noWaitReady = false) => startDaemon({ dir: daemonDir, configToml: toml, noWaitReady });
  let image: PushedImage;
  try {
    image = await pushBusyboxImage(reg.host, 'dur/busybox', 'v1');
    d = await start();
    await d.client.call('PullImage', { image: { image: image.ref } });
  } catch (err) {
    await d?.cleanup();
    await reg.stop();
    net.destroy();
    removeCgroupTree(cgroupRoot);
    removeDir(dir);
    throw err;
  }
  let seq = 0;
  const env: DurEnv = {
    dir,
    daemonDir,
    logs,
    net,
    reg,
    image,
    fp,
    cni,
    cgroupRoot,
    d,
    async restart(o = {}) {
      env.d.client.close();
      if (o.killAfterMs !== undefined) {
        env.d = await start(true);
        await new Promise((r) => setTimeout(r, o.killAfterMs));
        await env.kill();
      }
      env.d = await start();
      return env.d;
    },
    async kill() {
      const pidFile = join(env.d.runRoot, 'cricketd.pid');
      const pid = Number(readFileSync(pidFile, 'utf8').trim());
      if (pid > 0) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      // catatonit exits with its child; kill it too if it lingers.
      const child = env.d.child;
      const gone = new Promise<void>((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', () => r())));
      const t = setTimeout(() => child.kill('SIGKILL'), 3000);
      await gone;
      clearTimeout(t);
      while (pid > 0 && alive(pid)) await new Promise((r) => setTimeout(r, 20));
      env.d.client.close();
    },
    podConfig(name) {
      const uid = `uid-${name}-${++seq}`;
      return {
        metadata: { name, namespace: 'dur-test', uid, attempt: 0 },
        hostname: name.slice(0, 60),
        logDirectory: join(logs, `dur-test_${name}_${uid}`),
        linux: {
          cgroupParent: `${cgroupRoot}/pod-${uid}`,
          securityContext: { namespaceOptions: { network: NamespaceMode.POD, pid: NamespaceMode.CONTAINER, ipc: NamespaceMode.POD } },
        },
      };
    },
    ctrConfig(name, cmd) {
      return { metadata: { name, attempt: 0 }, image: { image: image.ref }, command: cmd, logPath: `${name}/0.log` };
    },
    async removeAll() {
      for (const p of (await env.d.client.call('ListPodSandbox', {})).items) {
        await env.d.client.call('StopPodSandbox', { podSandboxId: p.id });
        await env.d.client.call('RemovePodSandbox', { podSandboxId: p.id });
      }
    },
    async cleanup() {
      try {
        await env.removeAll();
      } catch {
        // daemon gone or broken: the host-level sweep below still runs
      }
      await env.d.cleanup().catch(() => {});
      // After a failed assertion the daemon may have left runc containers: end them
      // so their cgroups can go.
      const runcRoot = join(daemonDir, 'run', 'runc');
      for (const id of spawnSync(RUNC, ['--root', runcRoot, 'list', '-q'], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean)) {
        spawnSync(RUNC, ['--root', runcRoot, 'delete', '--force', id]);
      }
      killConmons(dir);
      for (const l of mountLines(dir).reverse()) spawnSync('umount', ['-l', l.split(' ')[4]!]);
      await reg.stop();
      net.destroy();
      removeCgroupTree(cgroupRoot);
      removeDir(dir);
    },
  };
  return env;
}


function alive(pid: number): boolean {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z/.test(st);
  } catch {
    return false;
  }
}

/** Everything on the host that belongs to the test, keyed so it can be matched to ids. */
export interface Inventory {
  /** mountinfo lines whose mount point is under the test dir. */
  mounts: string[];
  /** Pinned namespaces (files under <run>/pods/<id>/ns that are mount points). */
  pins: string[];
  /** Pod ids with a run dir. */
  podRunDirs: string[];
  /** Container ids with a bundle dir or a writable layer dir. */
  ctrDirs: string[];
  /** Host ends of veths on the test bridge. */
  veths: string[];
  /** Container ids holding host-local reservations. */
  ipamIds: string[];
  /** Container ids in iptables comments of the test network. */
  iptablesIds: string[];
  /** Cgroup dirs under the test's cgroup root (relative, every hierarchy). */
  cgroups: string[];
  /** Container ids of live conmon processes started for the test. */
  conmonIds: string[];
  /** Ids with a durable pod or container record (meta or status). */
  recordIds: string[];
  /** Pod ids with a cached CNI result (what DEL needs after a restart). */
  cniCacheIds: string[];
}

/** What a test's host objects are found by: its dir, the daemon's dir under it, its network and cgroup root. */
export type InventoryScope = Pick<DurEnv, 'dir' | 'daemonDir' | 'net' | 'cgroupRoot'>;

export function inventory(env: InventoryScope): Inventory {
  const runRoot = join(env.daemonDir, 'run');
  const root = join(env.daemonDir, 'root');
  const ls = (d: string) => (existsSync(d) ? readdirSync(d) : []);
  const mounts = mountLines(env.dir);
  const mountPoints = new Set(mounts.map((l) => l.split(' ')[4]!));
  const podRunDirs = ls(join(runRoot, 'pods')).filter((n) => /^[0-9a-f]{64}$/.test(n));
  const pins: string[] = [];
  for (const id of podRunDirs) for (const ns of ls(join(runRoot, 'pods', id, 'ns'))) {
    const p = join(runRoot, 'pods', id, 'ns', ns);
    if (mountPoints.has(p)) pins.push(p);
  }
  const ctrDirs = [...new Set([...ls(join(runRoot, 'containers')), ...ls(join(root, 'containers', 'layers'))])].filter((n) => /^[0-9a-f]{64}$/.test(n));
  const ipamIds = ipamReservations(env.net).map((f) => readFileSync(join(env.net.ipamDir, env.net.name, f), 'utf8').split(/\s/)[0]!);
  const ipt = spawnSync('iptables-save', [], { encoding: 'utf8' }).stdout;
  const iptablesIds = [...new Set(ipt.split('\n').filter((l) => l.includes(env.net.name)).flatMap((l) => [...l.matchAll(/id: \\?"?([0-9a-f]{64})/g)].map((m) => m[1]!)))];
  const cgroups: string[] = [];
  for (const h of hierarchies()) {
    const base = join(h, env.cgroupRoot);
    const walk = (d: string, rel: string) => {
      if (!existsSync(d)) return;
      for (const e of readdirSync(d, { withFileTypes: true })) {
        if (!e.isDirectory()) continue;
        cgroups.push(`${h.split('/').pop()}:${rel}/${e.name}`);
        walk(join(d, e.name), `${rel}/${e.name}`);
      }
    };
    walk(base, '');
  }
  return {
    mounts,
    pins,
    podRunDirs,
    ctrDirs,
    veths: vethsOn(env.net.bridge),
    ipamIds,
    iptablesIds,
    cgroups,
    conmonIds: conmons(env.dir).map((c) => c.id),
    recordIds: [
      ...new Set(
        ['pods/meta', 'pods/status', 'containers/meta', 'containers/status'].flatMap((d) =>
          ls(join(root, d)).filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5)),
        ),
      ),
    ],
    cniCacheIds: ls(join(root, 'cni', 'results')).filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5)),
  };
}

export function mountLines(under: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.split(' ')[4]?.startsWith(`${under}/`));
}

/** Live conmon processes whose command line mentions `under`, with their container id (-c). */
export function conmons(under: string): { pid: number; id: string }[] {
  const out: { pid: number; id: string }[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (!argv[0]?.endsWith('conmon') || !argv.some((a) => a.includes(under))) continue;
    const i = argv.findIndex((a) => a === '-c' || a === '--cid');
    out.push({ pid: Number(e), id: i >= 0 ? argv[i + 1]! : '' });
  }
  return out;
}

export function killConmons(under: string): void {
  for (const c of conmons(under)) {
    try {
      process.kill(c.pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

export function removeCgroupTree(rel: string): void {
  for (const h of hierarchies()) {
    const base = join(h, rel);
    const rm = (d: string) => {
      if (!existsSync(d)) return;
      for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) rm(join(d, e.name));
      try {
        rmdirSync(d);
      } catch {
        // busy: nothing more a test can do
      }
    };
    rm(base);
  }
}

/** The inventory of a fully cleaned test: nothing at all. */
export function emptyInventory(): Inventory {
  return { mounts: [], pins: [], podRunDirs: [], ctrDirs: [], veths: [], ipamIds: [], iptablesIds: [], cgroups: [], conmonIds: [], recordIds: [], cniCacheIds: [] };
}

