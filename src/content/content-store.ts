import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, stat, unlink, open } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CricketError, internal } from '../core/errors.js';
import { syncDir } from '../store/atomic-write.js';

/**
 * Blobs stored once by digest: <dir>/blobs/sha256/<hex>. A download goes to
 * <dir>/ingest/ first, is hashed while it streams, and is renamed into place only
 * when the digest (and size, when known) match — so a crash or a bad byte never
 * leaves a blob visible under a digest it does not have.
 */
export class ContentStore {
  readonly blobsDir: string;
  readonly ingestDir: string;

  constructor(imagesDir: string) {
    this.blobsDir = join(imagesDir, 'blobs', 'sha256');
    this.ingestDir = join(imagesDir, 'ingest');
  }

  async init(): Promise<void> {
    await mkdir(this.blobsDir, { recursive: true, mode: 0o700 });
    // Leftovers of interrupted downloads are never reused: start clean.
    await rm(this.ingestDir, { recursive: true, force: true });
    await mkdir(this.ingestDir, { recursive: true, mode: 0o700 });
  }

  path(digest: string): string {
    const hex = hexOf(digest);
    return join(this.blobsDir, hex);
  }

  async has(digest: string): Promise<boolean> {
    try {
      await stat(this.path(digest));
      return true;
    } catch {
      return false;
    }
  }

  async read(digest: string): Promise<Buffer> {
    return readFile(this.path(digest));
  }

  /** Stores bytes already verified in memory (manifests, configs). */
  async writeVerified(digest: string, bytes: Buffer): Promise<void> {
    verifyBytes(digest, bytes);
    if (await this.has(digest)) return;
    const tmp = join(this.ingestDir, `${hexOf(digest)}-${randomBytes(6).toString('hex')}`);
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await this.#commit(tmp, digest);
  }

  /**
   * Streams `body` into the ingest area, hashing as it goes; renames into place on a
   * match. Returns the byte count. A mismatch or an error removes the partial file.
   */
  async ingest(digest: string, expectedSize: number | undefined, body: Readable, signal: AbortSignal): Promise<number> {
    const hex = hexOf(digest);
    const tmp = join(this.ingestDir, `${hex}-${randomBytes(6).toString('hex')}`);
    const hash = createHash('sha256');
    let n = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        n += chunk.length;
        if (expectedSize !== undefined && n > expectedSize) {
          cb(new CricketError('InvalidArgument', `blob ${digest} is larger than the ${expectedSize} bytes its descriptor says`));
          return;
        }
        hash.update(chunk);
        cb(null, chunk);
      },
    });
    try {
      const out = createWriteStream(tmp, { flags: 'wx', mode: 0o600 });
      await pipeline(body, counter, out, { signal });
      if (expectedSize !== undefined && n !== expectedSize) {
        throw new CricketError('InvalidArgument', `blob ${digest} is ${n} bytes; its descriptor says ${expectedSize}`);
      }
      const got = `sha256:${hash.digest('hex')}`;
      if (got !== digest) throw new CricketError('InvalidArgument', `blob content does not match its digest: expected ${digest}, got ${got}`);
      const fh = await open(tmp, 'r');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
      await this.#commit(tmp, digest);
      return n;
    } catch (err) {
      await unlink(tmp).catch(() => {});
      throw err;
    }
  }

  async #commit(tmp: string, digest: string): Promise<void> {
    await rename(tmp, this.path(digest));
    await syncDir(this.blobsDir);
  }

  async delete(digest: string): Promise<void> {
    await rm(this.path(digest), { force: true });
  }

  /** Every stored digest. */
  async list(): Promise<string[]> {
    const names = await readdir(this.blobsDir).catch(() => [] as string[]);
    return names.filter((n) => /^[0-9a-f]{64}$/.test(n)).map((n) => `sha256:${n}`);
  }
}

export function hexOf(digest: string): string {
  const m = /^sha256:([0-9a-f]{64})$/.exec(digest);
  if (!m) throw internal(`unsupported digest "${digest}": only sha256 is supported`);
  return m[1]!;
}

export function sha256Of(bytes: Buffer | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

export function verifyBytes(digest: string, bytes: Buffer): void {
  const got = sha256Of(bytes);
  if (got !== digest) throw new CricketError('InvalidArgument', `content does not match its digest: expected ${digest}, got ${got}`);
}
