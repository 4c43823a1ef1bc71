import { readFile, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { z } from 'zod';
import { internal } from '../core/errors.js';
import { TMP_PREFIX, writeFileAtomic, syncDir } from './atomic-write.js';

/**
 * A directory of typed, versioned JSON records, one file per key, written atomically.
 * Every record carries `v` (schema version); a record that fails its schema is
 * reported rather than silently dropped, so recovery can decide what to do with it.
 */
export class JsonRecordDir<S extends z.ZodType<{ v: number }>> {
  readonly dir: string;
  readonly #schema: S;

  constructor(dir: string, schema: S) {
    this.dir = dir;
    this.#schema = schema;
  }

  #file(key: string): string {
    if (!/^[A-Za-z0-9._-]+$/.test(key) || key.startsWith('.')) throw internal(`record key "${key}" is not a safe file name`);
    return join(this.dir, `${key}.json`);
  }

  async put(key: string, value: z.output<S>): Promise<void> {
    await writeFileAtomic(this.#file(key), JSON.stringify(value), 0o600);
  }

  async get(key: string): Promise<z.output<S> | undefined> {
    let text: string;
    try {
      text = await readFile(this.#file(key), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    return this.#schema.parse(JSON.parse(text));
  }

  /** Removes the record's file; durable only after sync(). Missing is fine. */
  async unlink(key: string): Promise<void> {
    try {
      await unlink(this.#file(key));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }

  /** Makes the unlinks so far durable. */
  async sync(): Promise<void> {
    try {
      await syncDir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await unlink(this.#file(key));
      await syncDir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }

  /**
   * Every record; unreadable ones come back in `bad` with their reason. Temp files of
   * writes a crash cut short (.tmp-*, see writeFileAtomic) are removed: loadAll runs at
   * recovery, before anything writes, so none of them belongs to a write in progress.
   */
  async loadAll(): Promise<{ good: Map<string, z.output<S>>; bad: { key: string; reason: string }[] }> {
    const good = new Map<string, z.output<S>>();
    const bad: { key: string; reason: string }[] = [];
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { good, bad };
      throw err;
    }
    for (const name of names) {
      if (name.startsWith(TMP_PREFIX)) {
        await unlink(join(this.dir, name)).catch(() => {});
        continue;
      }
      if (!name.endsWith('.json') || name.startsWith('.')) continue;
      const key = name.slice(0, -5);
      try {
        good.set(key, this.#schema.parse(JSON.parse(await readFile(join(this.dir, name), 'utf8'))));
      } catch (err) {
        bad.push({ key, reason: (err as Error).message.slice(0, 500) });
      }
    }
    return { good, bad };
  }
}
