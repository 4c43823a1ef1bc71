import { existsSync, readdirSync } from 'node:fs';
import { chown, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { applyLimits, removeLeafCgroup } from '../../host/cgroups.js';
import { readCgroupStats, readOomKills, readSwapUsage } from '../../host/cgroup-stats.js';
import { diskUsage } from '../../host/disk-usage.js';
import { waitUntilSignalReaches } from '../../host/signal-ready.js';
import { discard, sweepDiscarded } from '../../host/discard.js';
import { readCgroupMetrics } from '../../host/cgroup-metrics.js';
import { netDevCounters } from '../../host/netns.js';
import { readHostFacts } from '../../runtime/host-facts.js';
import { mountOverlay, mountReadOnlyLayers, removeLayerDirs, unmountOverlay, unmountUnder } from '../../host/overlay.js';
import { readFileInRoot } from '../../host/overlay-read.js';
import { idmapMount } from '../../host/userns.js';
import { createWithConmon } from '../../runtime/conmon.js';
import { conmonSawOom, killConmon, reopenConmonLogs } from '../../runtime/conmon-control.js';
import { execSync } from '../../runtime/exec-sync.js';
import { OciRuntime } from '../../runtime/runc.js';
import { removeSandboxLeftovers } from '../../runtime/handler.js';
import { sandboxContainerUsage } from '../../runtime/pod-sandbox.js';
import { writeFileAtomic } from '../../store/atomic-write.js';
import { checkLogPathInside, loadLocalhostSeccomp, resolveDevices, resolveMounts } from './host-inputs.js';

/** The calls the container RPCs make on one OCI runtime (runc or a compatible binary). */
export type OciRuntimeCalls = Pick<OciRuntime, 'path' | 'root' | 'args' | 'state' | 'start' | 'kill' | 'delete' | 'update'>;

/**
 * Every host operation a container's life needs, as one seam (like pods/pod-host.ts):
 * the real ones (host/, runtime/, node:fs) in the daemon, a fake in unit tests of
 * CreateContainer's rollback, start, stop, remove and recovery. The use cases in this
 * directory touch the host only through it.
 */
export interface ContainerHost {
  // Read before any side effect: bind sources, devices, a Localhost seccomp profile,
  // the log path against the pod's log directory, and what the host offers a spec.
  resolveMounts: typeof resolveMounts;
  resolveDevices: typeof resolveDevices;
  loadLocalhostSeccomp: typeof loadLocalhostSeccomp;
  checkLogPathInside: typeof checkLogPathInside;
  readHostFacts: typeof readHostFacts;

  // The rootfs: image layers under a writable layer, and files read from inside it.
  mountOverlay: typeof mountOverlay;
  unmountOverlay: typeof unmountOverlay;
  // Image volumes: other images' layers read-only, each under the bundle.
  mountReadOnlyLayers: typeof mountReadOnlyLayers;
  unmountUnder: typeof unmountUnder;
  removeLayerDirs: typeof removeLayerDirs;
  readFileInRoot: typeof readFileInRoot;
  // A pod with its own user namespace: CRI mounts seen through it, files handed to its root.
  idmapMount: typeof idmapMount;
  chown(path: string, uid: number, gid: number): Promise<void>;

  // Plain files and directories: bundles, log directories, attach links.
  makeDir(path: string, mode?: number): Promise<void>;
  /** rm -rf; nothing there is not an error. */
  removeAll(path: string): Promise<void>;
  /** rm -rf whose deleting goes on in the background (host/discard.ts): RemoveContainer's. */
  discard: typeof discard;
  /** Deletes what discards cut short by a crash left in a directory. */
  sweepDiscarded: typeof sweepDiscarded;
  /** A plain write, for bundle files: the bundle lives in the run root, which a reboot empties, so no fsync. */
  writeFile(path: string, text: string, mode?: number): Promise<void>;
  writeFileAtomic: typeof writeFileAtomic;
  /** A JSON file's value, or undefined when it is missing or unreadable. */
  readJson(path: string): Promise<unknown>;
  exists(path: string): boolean;
  /** The names in a directory; none when it does not exist. */
  listDir(path: string): string[];

  /** Waits (briefly) until a just-started init would get its stop signal rather than drop it. */
  waitUntilSignalReaches: typeof waitUntilSignalReaches;

  // The OCI runtime and conmon.
  runtime(path: string, root: string, args: readonly string[]): OciRuntimeCalls;
  createWithConmon: typeof createWithConmon;
  killConmon: typeof killConmon;
  conmonSawOom: typeof conmonSawOom;
  reopenConmonLogs: typeof reopenConmonLogs;
  execSync: typeof execSync;

  /** Writes limits into a cgroup: a gVisor container's (runsc has no `update`). */
  applyLimits: typeof applyLimits;
  /** OOM kills in a cgroup: did a gVisor sandbox die of its memory limit while starting? */
  readOomKills: typeof readOomKills;
  /** A container's cgroup, removed: runsc leaves it behind when its sandbox died while being created. */
  removeLeafCgroup: typeof removeLeafCgroup;
  /** runsc's lock and socket files of a container whose sandbox died while being created. */
  removeSandboxLeftovers: typeof removeSandboxLeftovers;

  // Usage, for stats and metrics.
  readCgroupStats: typeof readCgroupStats;
  /** A container that joined its pod's gVisor sandbox: its usage from gVisor (its own cgroup is empty). */
  sandboxContainerUsage: typeof sandboxContainerUsage;
  /** The cgroup counters and limits behind the cAdvisor-named CRI metrics. */
  readCgroupMetrics: typeof readCgroupMetrics;
  /** A pod's interface counters, read inside its network namespace. */
  netDevCounters: typeof netDevCounters;
  readSwapUsage: typeof readSwapUsage;
  diskUsage: typeof diskUsage;
}

export const realContainerHost: ContainerHost = {
  resolveMounts,
  resolveDevices,
  loadLocalhostSeccomp,
  checkLogPathInside,
  readHostFacts,
  mountOverlay,
  unmountOverlay,
  mountReadOnlyLayers,
  unmountUnder,
  removeLayerDirs,
  readFileInRoot,
  idmapMount,
  chown: (path, uid, gid) => chown(path, uid, gid),
  makeDir: async (path, mode) => void (await mkdir(path, { recursive: true, mode })),
  removeAll: (path) => rm(path, { recursive: true, force: true }),
  discard,
  sweepDiscarded,
  writeFile: (path, text, mode) => writeFile(path, text, mode !== undefined ? { mode } : {}),
  writeFileAtomic,
  readJson: (path) => readFile(path, 'utf8').then(JSON.parse).catch(() => undefined),
  exists: existsSync,
  listDir: (path) => (existsSync(path) ? readdirSync(path) : []),
  waitUntilSignalReaches,
  runtime: (path, root, args) => new OciRuntime(path, root, args),
  createWithConmon,
  killConmon,
  conmonSawOom,
  reopenConmonLogs,
  execSync,
  applyLimits,
  readOomKills,
  removeLeafCgroup,
  removeSandboxLeftovers,
  readCgroupStats,
  sandboxContainerUsage,
  readCgroupMetrics,
  netDevCounters,
  readSwapUsage,
  diskUsage,
};
