import { readdirSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * Removal off the caller's path. A removed container's bundle, writable layer and
 * socket dir are renamed aside in their own directory (one rename(2) each, same
 * filesystem by construction) and deleted in the background: `rm -r` of a container's
 * small trees cost 1–4 ms per call here, most of RemoveContainer, while containerd
 * answers it from metadata alone. A crash leaves `.removed-*` entries behind, which
 * the next start sweeps (sweepDiscarded); the names never look like an id, so the
 * orphan clean-up of unfinished creates never mistakes them for a container.
 */
export const DISCARD_PREFIX = '.removed-';

const pending = new Set<Promise<void>>();
let seq = 0;

/** rm -rf, from the caller's point of view at once: nothing there is not an error. */
export async function discard(path: string): Promise<void> {
  const aside = join(dirname(path), `${DISCARD_PREFIX}${basename(path)}.${process.pid}.${seq++}`);
  try {
    await rename(path, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    // A mount point (EBUSY) or anything odd: remove in place, as before.
    await rm(path, { recursive: true, force: true });
    return;
  }
  const done: Promise<void> = rm(aside, { recursive: true, force: true })
    .catch(() => {
      // Left for the sweep at the next start.
    })
    .finally(() => pending.delete(done));
  pending.add(done);
}

/** Resolves when every background removal started so far has finished (shutdown, tests). */
export async function discardsSettled(): Promise<void> {
  while (pending.size > 0) await Promise.all([...pending]);
}

/** Removes what discards a crash cut short left in dir. */
export async function sweepDiscarded(dir: string): Promise<void> {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  await Promise.all(names.filter((n) => n.startsWith(DISCARD_PREFIX)).map((n) => rm(join(dir, n), { recursive: true, force: true }).catch(() => {})));
}
