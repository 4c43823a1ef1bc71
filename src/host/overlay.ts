import { chown, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { mountPointsUnder } from './netns.js';
import { sysHelper } from './sys-helper.js';
import { idmapMount } from './userns.js';

export interface OverlayPaths {
  /** Merged view, the container's rootfs (under the run root: gone at reboot). */
  target: string;
  /** The container's writable layer and overlay's work dir (under the root: they keep data). */
  upper: string;
  work: string;
  /** Used when an image has no layers at all: overlay needs one lower dir. */
  emptyLower: string;
}

/** A rootfs for a pod with its own user namespace (hostUsers: false). */
export interface OverlayIdmap {
  /** The pod's pinned user namespace: the layers are seen through it. */
  usernsPath: string;
  /** The host ids the pod's root (container id 0) maps to: the owner of the upper layer. */
  rootUid: number;
  rootGid: number;
  /** Where the layers' idmapped views are mounted while the overlay is made (emptied after). */
  scratchDir: string;
}

/**
 * Mounts image layers (lowest first) read-only under a writable upper layer. overlay
 * lists lower dirs top first, so the order is reversed here.
 *
 * With idmap, each layer is first seen through an idmapped mount (on-disk 0 is the pod
 * root's host uid), the overlay is made over those views, and the views are unmounted
 * again: overlay keeps its own private clone of each layer's mount, so nothing stays
 * mounted but the overlay. The upper layer and its root are the pod root's, so what the
 * container writes is owned by its mapped uids on the host, and a copy-up keeps the
 * mapped owner of the file it copies.
 */
export async function mountOverlay(layerDirs: readonly string[], p: OverlayPaths, signal?: AbortSignal, idmap?: OverlayIdmap): Promise<void> {
  await mkdir(p.target, { recursive: true });
  await mkdir(p.upper, { recursive: true });
  await mkdir(p.work, { recursive: true });
  let lowers = [...layerDirs].reverse();
  if (lowers.length === 0) {
    await mkdir(p.emptyLower, { recursive: true });
    lowers = [p.emptyLower];
  }
  for (const l of lowers) if (/[,:]/.test(l)) throw new Error(`layer path ${l} contains "," or ":", which overlay cannot take`);
  if (!idmap) {
    const opts = `lowerdir=${lowers.join(':')},upperdir=${p.upper},workdir=${p.work}`;
    await sysHelper.request('mount', { source: 'overlay', target: p.target, fstype: 'overlay', data: opts }, { signal });
    return;
  }
  await chown(p.upper, idmap.rootUid, idmap.rootGid);
  try {
    const views: string[] = [];
    for (const [i, l] of lowers.entries()) {
      const view = join(idmap.scratchDir, String(i));
      await idmapMount(l, view, idmap.usernsPath, signal);
      views.push(view);
    }
    const opts = `lowerdir=${views.join(':')},upperdir=${p.upper},workdir=${p.work}`;
    await sysHelper.request('mount', { source: 'overlay', target: p.target, fstype: 'overlay', data: opts }, { signal });
  } finally {
    await unmountUnder(idmap.scratchDir, signal);
    await rm(idmap.scratchDir, { recursive: true, force: true });
  }
}

/**
 * An image's layers, read-only, at target (an image volume): overlay with lower dirs
 * only. Overlay wants two lower dirs when there is no upper one, so an empty dir lies
 * at the bottom; nothing is copied.
 */
export async function mountReadOnlyLayers(layerDirs: readonly string[], target: string, emptyLower: string, signal?: AbortSignal): Promise<void> {
  await mkdir(target, { recursive: true });
  await mkdir(emptyLower, { recursive: true });
  const lowers = [...layerDirs].reverse();
  lowers.push(emptyLower);
  for (const l of lowers) if (/[,:]/.test(l)) throw new Error(`layer path ${l} contains "," or ":", which overlay cannot take`);
  await sysHelper.request('mount', { source: 'overlay', target, fstype: 'overlay', flags: ['ro', 'nosuid', 'nodev'], data: `lowerdir=${lowers.join(':')}` }, { signal });
}

/** Unmounts everything mounted at or below dir, deepest first; nothing there is fine. */
export async function unmountUnder(dir: string, signal?: AbortSignal): Promise<void> {
  for (const target of mountPointsUnder(dir)) await sysHelper.request('umount', { target }, { signal });
}

/** Unmounts if mounted (lazily if busy); safe to repeat. */
export async function unmountOverlay(target: string, signal?: AbortSignal): Promise<void> {
  await sysHelper.request('umount', { target }, { signal });
}

export async function removeLayerDirs(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

export function overlayPaths(runDir: string, layerDir: string): OverlayPaths {
  return { target: join(runDir, 'rootfs'), upper: join(layerDir, 'upper'), work: join(layerDir, 'work'), emptyLower: join(layerDir, 'empty') };
}
