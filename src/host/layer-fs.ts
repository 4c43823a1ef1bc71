import { spawn } from 'node:child_process';
import { writeFile, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { abortError, CricketError, internal } from '../core/errors.js';
import { run } from './exec.js';

// The OS calls layer unpacking needs that Node lacks: mknod (device nodes and overlay
// whiteouts, which are 0/0 character devices), extended attributes (file
// capabilities, the overlay opaque marker) and a zstd decoder (Node 20's zlib has
// none; Debian's zstd binary is fast and well kept). Each goes through a program so
// the daemon stays free of native addons.

export interface LayerFs {
  /** Creates a device node or fifo at an absolute path; never follows a symlink there. */
  mknod(path: string, kind: 'c' | 'b' | 'p', major: number, minor: number, mode: number, signal: AbortSignal): Promise<void>;
  /** Sets many xattrs at once on paths relative to `root`, never following symlinks. */
  setXattrs(root: string, items: readonly XattrItem[], signal: AbortSignal): Promise<void>;
  /** A zstd decoder between `input` and the returned stream; `done` rejects if zstd fails. */
  zstdDecompress(input: Readable, signal: AbortSignal): { output: Readable; done: Promise<void> };
}

export interface XattrItem {
  /** Path relative to the root, without a leading slash. */
  path: string;
  name: string;
  value: Buffer;
}

const MKNOD = '/usr/bin/mknod';
const SETFATTR = '/usr/bin/setfattr';
const ZSTD = '/usr/bin/zstd';

export const realLayerFs: LayerFs = {
  async mknod(path, kind, major, minor, mode, signal) {
    const args = ['-m', (mode & 0o7777).toString(8), path, kind];
    if (kind !== 'p') args.push(String(major), String(minor));
    await run(MKNOD, args, { signal, timeoutMs: 30_000 });
  },

  async setXattrs(root, items, signal) {
    if (items.length === 0) return;
    // setfattr --restore takes getfattr's dump format: one "# file:" block per path,
    // values as base64 ("0s…") so binary capabilities survive.
    const byPath = new Map<string, XattrItem[]>();
    for (const it of items) {
      const list = byPath.get(it.path) ?? [];
      list.push(it);
      byPath.set(it.path, list);
    }
    let dump = '';
    for (const [p, list] of byPath) {
      dump += `# file: ${escapeDumpPath(p)}\n`;
      for (const it of list) dump += `${escapeDumpPath(it.name)}=0s${it.value.toString('base64')}\n`;
      dump += '\n';
    }
    const file = join(root, `.cricket-xattrs-${randomBytes(6).toString('hex')}`);
    await writeFile(file, dump, { mode: 0o600, flag: 'wx' });
    try {
      await run(SETFATTR, ['-h', `--restore=${file}`], { cwd: root, signal, timeoutMs: 120_000 });
    } finally {
      await unlink(file).catch(() => {});
    }
  },

  zstdDecompress(input, signal) {
    // Streaming, so run() (which buffers output) does not fit; the child still gets
    // the caller's signal and dies with it.
    const child = spawn(ZSTD, ['-d', '-c', '-q'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => {
      if (stderr.length < 4096) stderr += b.toString();
    });
    const onAbort = () => child.kill('SIGKILL');
    signal.addEventListener('abort', onAbort, { once: true });
    input.on('error', () => child.kill('SIGKILL'));
    child.stdin.on('error', () => {}); // zstd may stop reading on corrupt input
    input.pipe(child.stdin);
    const done = new Promise<void>((resolve, reject) => {
      child.once('error', (err) => reject(new CricketError('FailedPrecondition', `cannot run ${ZSTD}: ${err.message}`, { cause: err })));
      child.once('close', (code, sig) => {
        signal.removeEventListener('abort', onAbort);
        if (signal.aborted) return reject(abortError(signal, 'zstd'));
        if (code === 0) return resolve();
        reject(internal(`zstd decompression failed (${sig ?? `exit code ${code}`}): ${stderr.trim().slice(-500)}`));
      });
    });
    return { output: child.stdout, done };
  },
};

// getfattr escapes backslash, newline and other unprintable bytes as \ooo.
function escapeDumpPath(p: string): string {
  let out = '';
  for (const b of Buffer.from(p, 'utf8')) {
    if (b < 0x21 || b > 0x7e || b === 0x5c || b === 0x3d || b === 0x22) out += `\\${b.toString(8).padStart(3, '0')}`;
    else out += String.fromCharCode(b);
  }
  return out;
}
