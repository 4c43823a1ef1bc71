import { watch, type FSWatcher } from 'node:fs';
import { mkdir, readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';

/**
 * Watches conmon's exit directory: conmon writes <exit-dir>/<id> holding the exit
 * code when a container's process ends. One inotify watch serves every container,
 * so nothing polls per container.
 */
export class ExitWatcher {
  readonly dir: string;
  readonly #log: Logger;
  readonly #onExit: (id: string, exitCode: number) => void;
  #watcher: FSWatcher | undefined;

  constructor(dir: string, log: Logger, onExit: (id: string, exitCode: number) => void) {
    this.dir = dir;
    this.#log = log;
    this.#onExit = onExit;
  }

  async start(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    this.#watcher = watch(this.dir, (_event, name) => {
      if (name && /^[0-9a-f]{64}$/.test(name)) void this.check(name);
    });
    this.#watcher.on('error', (err) => this.#log.warn({ err }, 'exit dir watch failed'));
    // Exits that happened while the daemon was down (or before the watch began).
    for (const name of await readdir(this.dir)) if (/^[0-9a-f]{64}$/.test(name)) await this.check(name);
  }

  /** Reads an exit file if present; returns the code, and tells the listener. */
  async check(id: string): Promise<number | undefined> {
    let text: string;
    try {
      text = await readFile(join(this.dir, id), 'utf8');
    } catch {
      return undefined;
    }
    if (text.trim() === '') return undefined; // still being written; the next event reads it
    const code = Number.parseInt(text.trim(), 10);
    if (!Number.isFinite(code)) return undefined;
    this.#onExit(id, code);
    return code;
  }

  async forget(id: string): Promise<void> {
    await unlink(join(this.dir, id)).catch(() => {});
  }

  close(): void {
    this.#watcher?.close();
  }
}
