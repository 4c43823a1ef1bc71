import { lstat, readFile, readlink } from 'node:fs/promises';
import { join, posix } from 'node:path';

/**
 * Resolves `path` inside `root` the way the container would see it: symlinks
 * (absolute or relative) are followed relative to root and can never climb out of
 * it. Returns the host path, or undefined when something along the way is missing.
 */
export async function resolveInRoot(root: string, path: string): Promise<string | undefined> {
  let parts = posix.normalize(`/${path}`).split('/').filter(Boolean);
  const done: string[] = [];
  let hops = 0;
  while (parts.length > 0) {
    const part = parts.shift()!;
    if (part === '.') continue;
    if (part === '..') {
      done.pop();
      continue;
    }
    const host = join(root, ...done, part);
    let st;
    try {
      st = await lstat(host);
    } catch {
      return undefined;
    }
    if (st.isSymbolicLink()) {
      if (++hops > 40) return undefined;
      const target = await readlink(host);
      if (target.startsWith('/')) done.length = 0;
      parts = [...target.split('/').filter(Boolean), ...parts];
      continue;
    }
    done.push(part);
  }
  return join(root, ...done);
}

/** A small text file from inside a rootfs (e.g. /etc/passwd), or undefined. */
export async function readFileInRoot(root: string, path: string, maxBytes = 4 << 20): Promise<string | undefined> {
  const host = await resolveInRoot(root, path);
  if (!host) return undefined;
  try {
    const st = await lstat(host);
    if (!st.isFile() || st.size > maxBytes) return undefined;
    return await readFile(host, 'utf8');
  } catch {
    return undefined;
  }
}
