import { mkdirSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import { join, relative } from 'node:path';
import { CricketError } from '../../src/core/errors.js';
import type { OpContext } from '../../src/core/context.js';
import type { CgroupStats } from '../../src/host/cgroup-stats.js';
import type { OverlayPaths } from '../../src/host/overlay.js';
import type { HostFacts } from '../../src/oci/spec.js';
import type { ConmonCreate } from '../../src/runtime/conmon.js';
import type { ContainerHost, OciRuntimeCalls } from '../../src/services/containers/container-host.js';
import type { PodHost, PodNetwork } from '../../src/services/pods/pod-host.js';
import { readSandboxNote } from '../../src/runtime/pod-sandbox.js';

// Fakes of the two host seams, for unit tests of the use cases without root. Each
// logs the calls made on it in order, and the call named `failAt` throws instead.

// ---------------------------------------------------------------------------- pods

/** What the fake pod host holds: pinned namespace paths and live pod inits (by pid). */
export interface FakePodHostState {
  readonly pinned: Set<string>;
  readonly inits: Set<number>;
}

/**
 * PodHost and PodNetwork: "do <step>" for each side effect, "undo <step>" for each undo.
 * `state` is what is "on the host": empty it to play a reboot before recovery.
 */
export function fakePodHost(log: string[], failAt: string | undefined): { host: PodHost; cni: PodNetwork; state: FakePodHostState } {
  const state: FakePodHostState = { pinned: new Set(), inits: new Set() };
  const act = async (name: string) => {
    if (name === failAt) throw new CricketError('Internal', `${name} failed on purpose`);
    log.push(`do ${name}`);
  };
  const host: PodHost = {
    probeHandler: async () => ({ ok: true, version: 'fake' }),
    ensureCgroup: async (p) => (await act('cgroup'), [`/fake${p}`]),
    removeCgroup: async () => void log.push('undo cgroup'),
    removeCgroupIfUnused: async () => {},
    placePodInit: async () => (await act('addProcess'), []),
    pinNamespaces: async (o) => {
      await act('pin');
      for (const p of [o.netPath, o.ipcPath, o.utsPath, o.user?.path]) if (p) state.pinned.add(p);
    },
    probeUserNamespaces: async () => ({ ok: true, reason: '' }),
    unpinNamespace: async (p) => {
      state.pinned.delete(p);
      log.push(`undo pin ${p.split('/').pop()}`);
    },
    mountShm: async () => act('shm'),
    unmountShm: async () => void log.push('undo shm'),
    startPodInit: async () => {
      await act('init');
      const pid = 4242 + state.inits.size;
      state.inits.add(pid);
      return { pid };
    },
    stopPodInit: async (pid) => {
      if (pid !== undefined) state.inits.delete(pid);
      log.push('undo init');
    },
    startSandboxInfra: async () => (await act('sandbox'), 5151),
    removeSandboxInfra: async () => void log.push('undo sandbox'),
    sandboxInfraAlive: () => true,
    readSandboxNote,
    removeLeafCgroup: async () => {},
    boundingSet: () => new Set(['CAP_CHOWN', 'CAP_NET_BIND_SERVICE', 'CAP_NET_ADMIN', 'CAP_SYS_ADMIN', 'CAP_KILL']),
    isMountPoint: (p) => state.pinned.has(p),
    isPodInit: (pid) => state.inits.has(pid),
    findPodInit: () => [...state.inits][0],
    findStrayPlugins: () => [],
    killAndWait: async () => {},
    readCgroupStats: () => ({
      timestampNs: 1n,
      cpuUsageNs: undefined,
      memoryUsageBytes: undefined,
      memoryWorkingSetBytes: undefined,
      memoryRssBytes: undefined,
      memoryLimitBytes: undefined,
      pageFaults: undefined,
      majorPageFaults: undefined,
      processCount: undefined,
    }),
    netDevCounters: async () => [],
  };
  const cni: PodNetwork = {
    network: () => ({ name: 'fake' }),
    setUp: async () => (await act('cni'), { network: 'fake', ips: ['10.9.0.2'], result: {} }),
    tearDown: async () => void log.push('undo cni'),
    gc: async () => {},
    cachedPodIds: async () => [],
  };
  return { host, cni, state };
}

// ---------------------------------------------------------------------- containers

/** A fake runc container: conmon created it; it writes an exit file when it ends. */
interface FakeRuncContainer {
  status: 'created' | 'running' | 'stopped';
  pid: number;
  exitDir: string;
}

export const FAKE_FACTS: HostFacts = {
  bounding: new Set(['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_NET_BIND_SERVICE', 'CAP_SETGID', 'CAP_SETUID', 'CAP_SETPCAP', 'CAP_SYS_CHROOT']),
  arch: 'x64',
  apparmorEnabled: false,
  cpuCount: 2,
  cgroupV2: true,
  ownOomScoreAdj: 0,
  clampOomScoreAdj: false,
  hugepageSizes: [],
};

const hexId = /[0-9a-f]{64}/g;

/**
 * ContainerHost over an in-memory host: the directories and files that exist, overlay
 * mounts, runc containers and conmon monitors. Every mutating call is logged as
 * "<verb> <path relative to root, ids as <id>>" (e.g. "mount run/containers/<id>/rootfs");
 * the call whose entry equals `failAt` (or "<entry> #n": its n-th time) is logged as
 * "! <entry>" and throws. A failing
 * mount or conmon first leaves what the real one can leave half done (the overlay's
 * directories; a runc container and its conmon), so undo steps pushed before the
 * attempt are exercised. Reads (state, stats, facts) are not logged.
 *
 * The one real file it writes is conmon's exit file (<exit dir>/<id>) when a fake
 * container ends, so the daemon's ExitWatcher sees exits as it would from conmon.
 */
export class FakeContainerHost implements ContainerHost {
  readonly log: string[] = [];
  failAt: string | undefined;
  readonly paths = new Set<string>();
  readonly mounts = new Set<string>();
  readonly runc = new Map<string, FakeRuncContainer>();
  readonly conmons = new Set<string>();
  /** Runs inside `runc start`, after the process started (e.g. to end it before start returns). */
  onStart: ((id: string) => Promise<void>) | undefined;
  readonly #root: string;
  #nextPid = 1000;

  constructor(root: string, failAt?: string) {
    this.#root = root;
    this.failAt = failAt;
  }

  label(path: string): string {
    const rel = relative(this.#root, path);
    return (rel.startsWith('..') ? path : rel).replace(hexId, '<id>');
  }

  /** What the host still holds, labelled: "dir …", "mount …", "runc <id>", "conmon <id>". */
  leftovers(): string[] {
    return [
      ...[...this.paths].map((p) => `dir ${this.label(p)}`),
      ...[...this.mounts].map((m) => `mount ${this.label(m)}`),
      ...[...this.runc.keys()].map((id) => `runc ${id}`),
      ...[...this.conmons].map((id) => `conmon ${id}`),
    ].sort();
  }

  /** Logs one call (ids as <id>), or throws when it is the one to fail (after halfDone). */
  record(entry: string, halfDone?: () => void): void {
    const e = entry.replace(hexId, '<id>');
    const nth = this.log.filter((l) => l === e || l === `! ${e}`).length + 1;
    if (e === this.failAt || `${e} #${nth}` === this.failAt) {
      this.log.push(`! ${e}`);
      halfDone?.();
      throw new CricketError('Internal', `${e} failed on purpose`);
    }
    this.log.push(e);
  }

  #drop(path: string): void {
    for (const p of this.paths) if (p === path || p.startsWith(`${path}/`)) this.paths.delete(p);
  }

  /** The container's process ended: conmon writes its exit file and exits. */
  #end(id: string, code: number): void {
    const c = this.runc.get(id);
    if (!c || c.status === 'stopped') return;
    c.status = 'stopped';
    mkdirSync(c.exitDir, { recursive: true });
    writeFileSync(join(c.exitDir, id), String(code));
    this.conmons.delete(id);
  }

  /** The container's process exits by itself with this code. */
  exit(id: string, code: number): void {
    this.#end(id, code);
  }

  resolveMounts: ContainerHost['resolveMounts'] = async () => (this.record('resolve mounts'), []);
  resolveDevices: ContainerHost['resolveDevices'] = async () => (this.record('resolve devices'), []);
  loadLocalhostSeccomp: ContainerHost['loadLocalhostSeccomp'] = async () => (this.record('load seccomp'), undefined);
  checkLogPathInside: ContainerHost['checkLogPathInside'] = async (_dir, full) => this.record(`check log ${this.label(full)}`);
  readHostFacts: ContainerHost['readHostFacts'] = () => FAKE_FACTS;

  mountOverlay: ContainerHost['mountOverlay'] = async (_layers, p: OverlayPaths) => {
    const dirs = () => [p.target, p.upper, p.work].forEach((d) => this.paths.add(d));
    this.record(`mount ${this.label(p.target)}`, dirs);
    dirs();
    this.mounts.add(p.target);
  };
  unmountOverlay: ContainerHost['unmountOverlay'] = async (target) => {
    this.record(`umount ${this.label(target)}`);
    this.mounts.delete(target);
  };
  mountReadOnlyLayers: ContainerHost['mountReadOnlyLayers'] = async (_layers, target) => {
    this.record(`mount ro ${this.label(target)}`, () => this.paths.add(target));
    this.paths.add(target);
    this.mounts.add(target);
  };
  /** Records only what it unmounts, as the real one touches nothing when nothing is mounted. */
  unmountUnder: ContainerHost['unmountUnder'] = async (dir) => {
    for (const m of [...this.mounts].filter((t) => t === dir || t.startsWith(`${dir}/`)).sort().reverse()) {
      this.record(`umount ${this.label(m)}`);
      this.mounts.delete(m);
    }
  };
  removeLayerDirs: ContainerHost['removeLayerDirs'] = async (dir) => {
    this.record(`rm layer ${this.label(dir)}`);
    this.#drop(dir);
  };
  readFileInRoot: ContainerHost['readFileInRoot'] = async (root, path) => {
    this.record(`read ${this.label(root)} ${path}`);
    return undefined;
  };

  idmapMount: ContainerHost['idmapMount'] = async (_source, target) => {
    this.record(`idmap ${this.label(target)}`, () => this.paths.add(target));
    this.paths.add(target);
    this.mounts.add(target);
  };
  chown: ContainerHost['chown'] = async (path) => this.record(`chown ${this.label(path)}`);

  makeDir: ContainerHost['makeDir'] = async (path) => {
    this.record(`mkdir ${this.label(path)}`);
    this.paths.add(path);
  };
  // The fake has no background: a discard is a removal, with the same checks.
  discard: ContainerHost['discard'] = (path) => this.removeAll(path);
  sweepDiscarded: ContainerHost['sweepDiscarded'] = async (dir) => {
    this.record(`sweep ${this.label(dir)}`);
  };
  waitUntilSignalReaches: ContainerHost['waitUntilSignalReaches'] = async () => {};
  removeAll: ContainerHost['removeAll'] = async (path) => {
    // rm -rf through a mounted rootfs would delete the container's files, not the mount.
    for (const m of this.mounts) if (m === path || m.startsWith(`${path}/`)) throw new Error(`rm ${path}: ${m} is still mounted`);
    this.record(`rm ${this.label(path)}`);
    this.#drop(path);
  };
  writeFile: ContainerHost['writeFile'] = async (path) => {
    this.record(`write ${this.label(path)}`);
    this.paths.add(path);
  };
  writeFileAtomic: ContainerHost['writeFileAtomic'] = async (path) => {
    this.record(`write ${this.label(path)}`);
    this.paths.add(path);
  };
  readJson: ContainerHost['readJson'] = async () => undefined;
  exists: ContainerHost['exists'] = (path) => this.paths.has(path);
  listDir: ContainerHost['listDir'] = (dir) => {
    const names = new Set<string>();
    for (const p of this.paths) if (p.startsWith(`${dir}/`)) names.add(p.slice(dir.length + 1).split('/')[0]!);
    return [...names];
  };

  runtime: ContainerHost['runtime'] = (path, root, args): OciRuntimeCalls => ({
    path,
    root,
    args,
    state: async (_ctx: OpContext, id: string) => {
      const c = this.runc.get(id);
      return c && { status: c.status, pid: c.pid };
    },
    start: async (_ctx: OpContext, id: string) => {
      this.record(`runc start ${id}`);
      const c = this.runc.get(id);
      if (!c || c.status !== 'created') throw new CricketError('Internal', `runc start ${id}: container is not created`);
      c.status = 'running';
      await this.onStart?.(id);
    },
    kill: async (_ctx: OpContext, id: string, signal: string) => {
      this.record(`runc kill ${id} ${signal}`);
      this.#end(id, 128 + (constants.signals[signal as keyof typeof constants.signals] ?? 9));
    },
    delete: async (_ctx: OpContext, id: string) => {
      this.record(`runc delete ${id}`);
      this.#end(id, 137);
      this.runc.delete(id);
    },
    update: async (_ctx: OpContext, id: string) => this.record(`runc update ${id}`),
  });
  createWithConmon: ContainerHost['createWithConmon'] = async (_ctx, o: ConmonCreate) => {
    if (!this.paths.has(o.bundleDir)) throw new Error(`conmon: no bundle at ${o.bundleDir}`);
    const pid = this.#nextPid++;
    const created = () => {
      this.runc.set(o.id, { status: 'created', pid, exitDir: o.exitDir });
      this.conmons.add(o.id);
      this.paths.add(o.logPath);
    };
    this.record(`conmon ${o.id}`, created);
    created();
    return pid;
  };
  killConmon: ContainerHost['killConmon'] = (_bundleDir, id) => {
    this.log.push(`kill conmon ${id}`.replace(hexId, '<id>'));
    this.conmons.delete(id);
  };
  conmonSawOom: ContainerHost['conmonSawOom'] = () => false;
  reopenConmonLogs: ContainerHost['reopenConmonLogs'] = async (bundleDir) => this.record(`reopen logs ${this.label(bundleDir)}`);
  execSync: ContainerHost['execSync'] = async (_ctx, o) => {
    this.record(`exec ${o.id} ${o.cmd.join(' ')}`);
    return { stdout: Buffer.from('out'), stderr: Buffer.alloc(0), exitCode: 0 };
  };

  readCgroupStats: ContainerHost['readCgroupStats'] = (): CgroupStats => ({
    timestampNs: BigInt(Date.now()) * 1_000_000n,
    cpuUsageNs: 1_000n,
    memoryUsageBytes: 4096n,
    memoryWorkingSetBytes: 4096n,
    memoryRssBytes: 4096n,
    memoryLimitBytes: undefined,
    pageFaults: 0n,
    majorPageFaults: 0n,
    processCount: 1n,
  });
  sandboxContainerUsage: ContainerHost['sandboxContainerUsage'] = async () => ({ cpuUsageNs: 2_000n, memoryUsageBytes: 8192n, processCount: 2n });
  readCgroupMetrics: ContainerHost['readCgroupMetrics'] = () => ({
    cpuUserNs: 3_000_000_000n,
    cpuSystemNs: 1_000_000_000n,
    cfsPeriods: 10n,
    cfsThrottledPeriods: 2n,
    cfsThrottledNs: 500n,
    memoryCacheBytes: 100n,
    memoryFailcnt: 0n,
    oomKills: 0n,
    specCpuShares: 1024n,
    specCpuPeriod: 100_000n,
    processes: 1n,
    threads: 1n,
    fileDescriptors: 3n,
  });
  netDevCounters: ContainerHost['netDevCounters'] = async () => [
    { name: 'lo', rxBytes: 1n, rxErrors: 0n, txBytes: 1n, txErrors: 0n },
    { name: 'eth0', rxBytes: 2000n, rxPackets: 20n, rxErrors: 0n, rxDropped: 0n, txBytes: 1000n, txPackets: 10n, txErrors: 0n, txDropped: 0n },
  ];
  readSwapUsage: ContainerHost['readSwapUsage'] = () => 0n;
  diskUsage: ContainerHost['diskUsage'] = async () => ({ bytes: 0n, inodes: 0n });
  applyLimits: ContainerHost['applyLimits'] = async () => {};
  /** What readOomKills answers for every cgroup. */
  oomKills = 0;
  readOomKills: ContainerHost['readOomKills'] = () => this.oomKills;
  removeLeafCgroup: ContainerHost['removeLeafCgroup'] = async () => {};
  removeSandboxLeftovers: ContainerHost['removeSandboxLeftovers'] = async () => {};
}
