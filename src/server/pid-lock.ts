import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { failedPrecondition } from '../core/errors.js';

/**
 * One daemon per run root: two cricketd sharing /run/cricket would adopt, mount and
 * tear down each other's pods. The pid file is created exclusively; a file left by a
 * dead process (or a pid now used by something that is not cricketd) is taken over.
 */
export class PidLock {
  readonly path: string;
  #held = false;

  constructor(runRoot: string) {
    this.path = join(runRoot, 'cricketd.pid');
  }

  acquire(): void {
    try {
      mkdirSync(join(this.path, '..'), { recursive: true, mode: 0o711 });
    } catch (err) {
      throw failedPrecondition(`cannot create run root ${join(this.path, '..')}: ${(err as Error).message}`);
    }
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(this.path, 'wx', 0o644);
        writeSync(fd, `${process.pid}\n`);
        closeSync(fd);
        this.#held = true;
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw failedPrecondition(`cannot write ${this.path}: ${(err as Error).message}`);
        }
      }
      const holder = Number.parseInt(readSafe(this.path), 10);
      if (Number.isInteger(holder) && holder !== process.pid && isCricketd(holder)) {
        throw failedPrecondition(`another cricketd (pid ${holder}) is using run root ${join(this.path, '..')}`);
      }
      try {
        unlinkSync(this.path);
      } catch {
        // raced with another starter; the next attempt decides
      }
    }
    throw failedPrecondition(`could not take ${this.path}: another cricketd is starting`);
  }

  release(): void {
    if (!this.#held) return;
    this.#held = false;
    try {
      if (readSafe(this.path).trim() === String(process.pid)) unlinkSync(this.path);
    } catch {
      // gone already
    }
  }
}

function readSafe(p: string): string {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}

function isCricketd(pid: number): boolean {
  const cmdline = readSafe(`/proc/${pid}/cmdline`);
  return cmdline.includes('cricketd');
}
