import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Bytes (allocated blocks) and inodes of the entries under a directory (a container's
 * writable layer), not following symlinks; the directory itself is not counted.
 */
export async function diskUsage(dir: string): Promise<{ bytes: bigint; inodes: bigint }> {
  let bytes = 0n;
  let inodes = 0n;
  const stack = [dir];
  while (stack.length > 0) {
    const d = stack.pop()!;
    let names: string[];
    try {
      names = await readdir(d);
    } catch {
      continue;
    }
    for (const n of names) {
      const p = join(d, n);
      const st = await lstat(p).catch(() => undefined);
      if (!st) continue;
      inodes += 1n;
      bytes += BigInt(st.blocks) * 512n;
      if (st.isDirectory()) stack.push(p);
    }
  }
  return { bytes, inodes };
}
