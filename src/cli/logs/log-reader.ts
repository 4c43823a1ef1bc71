import { open, stat, type FileHandle } from 'node:fs/promises';
import { watch } from 'node:fs';

/**
 * Reads a CRI log file as records (lines), from the start; with follow, keeps
 * reading what is appended until `stop` aborts. kubelet rotates by renaming the file
 * and asking the runtime to reopen it: a file at the path that is a new one (another
 * inode) or shorter than what was read is started again from its beginning.
 * Yields null each time it has caught up with the end of the file (--tail uses the first).
 */
export async function* readRecords(path: string, o: { follow: boolean; stop: AbortSignal }): AsyncGenerator<string | null> {
  let fh: FileHandle | undefined = await open(path, 'r');
  let ino = (await fh.stat()).ino;
  let pos = 0;
  let rest = '';
  const buf = Buffer.alloc(64 * 1024);
  let wake: (() => void) | undefined;
  const watcher = o.follow ? watchFile(path, () => wake?.()) : undefined;
  const onStop = () => wake?.();
  o.stop.addEventListener('abort', onStop);
  try {
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead > 0) {
        pos += bytesRead;
        rest += buf.subarray(0, bytesRead).toString('utf8');
        const lines = rest.split('\n');
        rest = lines.pop() ?? '';
        for (const l of lines) yield l;
        continue;
      }
      yield null;
      if (!o.follow || o.stop.aborted) break;
      // Rotated or truncated: take the file now at the path from its start.
      const now = await stat(path).catch(() => undefined);
      if (now && (now.ino !== ino || now.size < pos)) {
        await fh.close();
        fh = await open(path, 'r');
        ino = (await fh.stat()).ino;
        pos = 0;
        continue;
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
        // fs.watch can miss events (rename races, some file systems): look again in a while anyway.
        const timer = setTimeout(resolve, 1000);
        timer.unref();
      });
      wake = undefined;
    }
    if (rest !== '') yield rest;
    yield null;
  } finally {
    o.stop.removeEventListener('abort', onStop);
    watcher?.close();
    await fh?.close();
  }
}

function watchFile(path: string, onChange: () => void): { close(): void } | undefined {
  try {
    const dir = path.slice(0, path.lastIndexOf('/')) || '/';
    return watch(dir, { persistent: false }, () => onChange());
  } catch {
    return undefined;
  }
}
