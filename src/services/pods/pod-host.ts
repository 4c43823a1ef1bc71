import { removeCgroupIfUnused, removeLeafCgroup } from '../../host/cgroups.js';
import { readCgroupStats } from '../../host/cgroup-stats.js';
import { ensurePodCgroup, placePodInit, removePodCgroups } from '../../host/pod-cgroups.js';
import { isMountPoint, netDevCounters, pinNamespaces, unpinNamespace } from '../../host/netns.js';
import { findPodInit, isPodInit, startPodInit, stopPodInit } from '../../host/pod-init.js';
import { mountShm, unmountShm } from '../../host/shm.js';
import { probeUserNamespaces } from '../../host/userns.js';
import { findStrayPlugins, killAndWait } from '../../host/stray-plugins.js';
import type { OpContext } from '../../core/context.js';
import { probeHandler } from '../../runtime/handler.js';
import { ownBoundingSet } from '../../host/capabilities.js';
import { readSandboxNote, removeSandboxInfra, sandboxInfraAlive, startSandboxInfra } from '../../runtime/pod-sandbox.js';
import type { AttachRequest, Attachment } from '../../cni/cni-manager.js';

/**
 * The host operations a pod's life needs, as one seam: the real ones (host/) in the
 * daemon, fakes (test/helpers/fake-hosts.ts) in unit tests of RunPodSandbox's rollback,
 * teardown, recovery and stats.
 */
export interface PodHost {
  /** Does the handler's binary run (cached per binary)? Asked before a pod is made. */
  probeHandler: typeof probeHandler;
  /** The pod cgroup for the configured driver (directories, or a systemd slice); returns what it made. */
  ensureCgroup: typeof ensurePodCgroup;
  /** Undoes a list ensureCgroup/placePodInit returned (or recovery found noted). */
  removeCgroup: typeof removePodCgroups;
  removeCgroupIfUnused: typeof removeCgroupIfUnused;
  /** The pod init into a leaf (cgroupfs) or scope (systemd) of its own under the pod cgroup. */
  placePodInit: typeof placePodInit;
  pinNamespaces: typeof pinNamespaces;
  /** Can this node idmap (asked once, at start and by the first pod asking for a user namespace)? */
  probeUserNamespaces: typeof probeUserNamespaces;
  unpinNamespace: typeof unpinNamespace;
  mountShm: typeof mountShm;
  unmountShm: typeof unmountShm;
  startPodInit: typeof startPodInit;
  stopPodInit: typeof stopPodInit;
  // A gVisor pod's sandbox (runtime/pod-sandbox.ts): started with its infra container,
  // removed with whatever still runs in it, and its cgroup after it.
  startSandboxInfra: typeof startSandboxInfra;
  removeSandboxInfra: typeof removeSandboxInfra;
  sandboxInfraAlive: typeof sandboxInfraAlive;
  readSandboxNote: typeof readSandboxNote;
  removeLeafCgroup: typeof removeLeafCgroup;
  /** The daemon's capability bounding set (what a sandbox's infra spec may ask for). */
  boundingSet: typeof ownBoundingSet;
  // Recovery: is what the pod runs on still there, and what a dead daemon left running.
  isMountPoint: typeof isMountPoint;
  isPodInit: typeof isPodInit;
  findPodInit: typeof findPodInit;
  findStrayPlugins: typeof findStrayPlugins;
  killAndWait: typeof killAndWait;
  // Stats.
  readCgroupStats: typeof readCgroupStats;
  netDevCounters: typeof netDevCounters;
}

export const realPodHost: PodHost = {
  probeHandler,
  ensureCgroup: ensurePodCgroup,
  removeCgroup: removePodCgroups,
  removeCgroupIfUnused,
  placePodInit,
  pinNamespaces,
  probeUserNamespaces,
  unpinNamespace,
  mountShm,
  unmountShm,
  startPodInit,
  stopPodInit,
  startSandboxInfra,
  removeSandboxInfra,
  sandboxInfraAlive,
  readSandboxNote,
  removeLeafCgroup,
  boundingSet: ownBoundingSet,
  isMountPoint,
  isPodInit,
  findPodInit,
  findStrayPlugins,
  killAndWait,
  readCgroupStats,
  netDevCounters,
};

/** What pods need from the network layer (CniManager in the daemon). */
export interface PodNetwork {
  /** The network pods get now; FailedPrecondition (why not) when there is no usable config. */
  network(): { name: string };
  setUp(ctx: OpContext, req: AttachRequest): Promise<Attachment>;
  tearDown(ctx: OpContext, podId: string): Promise<void>;
  gc(ctx: OpContext, livePodIds: readonly string[]): Promise<void>;
  cachedPodIds(): Promise<string[]>;
}
