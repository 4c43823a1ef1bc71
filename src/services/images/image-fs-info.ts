import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { UnaryHandler } from '../../core/rpc.js';
import type { ImagesCore } from './images-deps.js';

/** Bytes (allocated blocks) and inodes under a directory, each inode counted once. */
export async function diskUsage(root: string): Promise<{ bytes: bigint; inodes: bigint }> {
  const seen = new Set<string>();
  let bytes = 0n;
  let inodes = 0n;
  const stack = [root];
  while (stack.length > 0) {
    const p = stack.pop()!;
    let st;
    try {
      st = await lstat(p, { bigint: true });
    } catch {
      continue; // removed while we walked
    }
    const key = `${st.dev}:${st.ino}`;
    if (seen.has(key)) continue;
    seen.add(key);
    inodes++;
    bytes += st.blocks * 512n;
    if (st.isDirectory()) {
      const names = await readdir(p).catch(() => [] as string[]);
      for (const n of names) stack.push(join(p, n));
    }
  }
  return { bytes, inodes };
}

// kubelet asks every few seconds; walking a big store each time is wasted work when
// nothing changed. A record change (pull, untag, remove) invalidates at once.
const MAX_AGE_MS = 10_000;

/** ImageFsInfo: usage of <root>/images (blobs, unpacked layers, records), for kubelet's image GC. */
export function makeImageFsInfo(core: ImagesCore): UnaryHandler<'ImageFsInfo'> {
  let cached: { generation: number; at: number; usage: { bytes: bigint; inodes: bigint } } | undefined;
  return async () => {
    const generation = core.generation();
    if (!cached || cached.generation !== generation || Date.now() - cached.at > MAX_AGE_MS) {
      cached = { generation, at: Date.now(), usage: await diskUsage(core.imagesDir) };
    }
    const { bytes, inodes } = cached.usage;
    return {
      imageFilesystems: [
        {
          timestamp: BigInt(Date.now()) * 1_000_000n,
          fsId: { mountpoint: core.imagesDir },
          usedBytes: { value: bytes },
          inodesUsed: { value: inodes },
        },
      ],
      containerFilesystems: [],
    };
  };
}
