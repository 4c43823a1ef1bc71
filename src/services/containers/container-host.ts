import { existsSync, readdirSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { readCgroupStats, readSwapUsage } from '../../host/cgroups.js';
import { diskUsage } from '../../host/disk-usage.js';
import { readHostFacts } from '../../runtime/host-facts.js';
import { mountOverlay, mountReadOnlyLayers, removeLayerDirs, unmountOverlay, unmountUnder } from '../../host/overlay.js';
import { readFileInRoot } from '../../host/overlay-read.js';
import { createWithConmon } from '../../runtime/conmon.js';
import { conmonSawOom, killConmon, reopenConmonLogs } from '../../runtime/conmon-control.js';
import { execSync } from '../../runtime/exec-sync.js';
import { OciRuntime } from '../../runtime/runc.js';
import { writeFileAtomic } from '../../store/atomic-write.js';
import { checkLogPathInside, loadLocalhostSeccomp, resolveDevices, resolveMounts } from './host-inputs.js';

/** The calls the container RPCs make on one OCI runtime (runc or a compatible binary). */
export type OciRuntimeCalls = Pick<OciRuntime, 'path' | 'root' | 'state' | 'start' | 'kill' | 'delete' | 'update'>;

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

  // Plain files and directories: bundles, log directories, attach links.
  makeDir(path: string, mode?: number): Promise<void>;
  /** rm -rf; nothing there is not an error. */
  removeAll(path: string): Promise<void>;
  writeFile(path: string, text: string): Promise<void>;
  writeFileAtomic: typeof writeFileAtomic;
  /** A JSON file's value, or undefined when it is missing or unreadable. */
  readJson(path: string): Promise<unknown>;
  exists(path: string): boolean;
  /** The names in a directory; none when it does not exist. */
  listDir(path: string): string[];

  // The OCI runtime and conmon.
  runtime(path: string, root: string): OciRuntimeCalls;
  createWithConmon: typeof createWithConmon;
  killConmon: typeof killConmon;
  conmonSawOom: typeof conmonSawOom;
  reopenConmonLogs: typeof reopenConmonLogs;
  execSync: typeof execSync;

  // Usage, for stats and metrics.
  readCgroupStats: typeof readCgroupStats;
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
  makeDir: async (path, mode) => void (await mkdir(path, { recursive: true, mode })),
  removeAll: (path) => rm(path, { recursive: true, force: true }),
  writeFile: (path, text) => writeFile(path, text),
  writeFileAtomic,
  readJson: (path) => readFile(path, 'utf8').then(JSON.parse).catch(() => undefined),
  exists: existsSync,
  listDir: (path) => (existsSync(path) ? readdirSync(path) : []),
  runtime: (path, root) => new OciRuntime(path, root),
  createWithConmon,
  killConmon,
  conmonSawOom,
  reopenConmonLogs,
  execSync,
  readCgroupStats,
  readSwapUsage,
  diskUsage,
};
