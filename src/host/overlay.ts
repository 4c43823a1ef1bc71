import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { mountPointsUnder } from './netns.js';
import { sysHelper } from './sys-helper.js';

export interface OverlayPaths {
  /** Merged view, the container's rootfs (under the run root: gone at reboot). */
  target: string;
  /** The container's writable layer and overlay's work dir (under the root: they keep data). */
  upper: string;
  work: string;
  /** Used when an image has no layers at all: overlay needs one lower dir. */
  emptyLower: string;
}

/**
 * Mounts image layers (lowest first) read-only under a writable upper layer. overlay
 * lists lower dirs top first, so the order is reversed here.
 */
export async function mountOverlay(layerDirs: readonly string[], p: OverlayPaths, signal?: AbortSignal): Promise<void> {
  await mkdir(p.target, { recursive: true });
  await mkdir(p.upper, { recursive: true });
  await mkdir(p.work, { recursive: true });
  let lowers = [...layerDirs].reverse();
  if (lowers.length === 0) {
    await mkdir(p.emptyLower, { recursive: true });
    lowers = [p.emptyLower];
  }
  for (const l of lowers) if (/[,:]/.test(l)) throw new Error(`layer path ${l} contains "," or ":", which overlay cannot take`);
  const opts = `lowerdir=${lowers.join(':')},upperdir=${p.upper},workdir=${p.work}`;
  await sysHelper.request('mount', { source: 'overlay', target: p.target, fstype: 'overlay', data: opts }, { signal });
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
