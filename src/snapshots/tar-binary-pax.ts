import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

// tar-stream decodes every PAX record as UTF-8, which mangles binary xattr values
// (a security.capability blob has bytes >= 0x80). Its extractor calls
// headers.decodePax through the module object, so replacing that one function with a
// decoder that keeps SCHILY.xattr.* values as latin1 (one char per byte) restores
// them exactly; unpack turns them back into bytes with Buffer.from(v, 'latin1').
//
// Why a patch and not another library: tar-stream (3.2.2, the latest) has no option for
// it (its xattr issue, mafintosh/tar-stream#108, is closed as "PR welcome"), and node-tar
// keeps no xattrs at all. The patch reaches into tar-stream's internals, so it refuses
// to install when they are not what it expects, and the unpack test checks a
// security.capability blob byte for byte.

const require = createRequire(import.meta.url);
const headers = require(join(dirname(require.resolve('tar-stream')), 'headers.js')) as {
  decodePax: (buf: Buffer) => Record<string, string>;
};

const XATTR_PREFIX = 'SCHILY.xattr.';

function decodePaxBinarySafe(buf: Buffer): Record<string, string> {
  const result: Record<string, string> = {};
  while (buf.length) {
    let i = 0;
    while (i < buf.length && buf[i] !== 32) i++;
    const len = parseInt(buf.subarray(0, i).toString('latin1'), 10);
    if (!len || len > buf.length) return result;
    const rec = buf.subarray(i + 1, len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq === -1) return result;
    const key = rec.subarray(0, eq).toString('utf8');
    const raw = rec.subarray(eq + 1);
    result[key] = key.startsWith(XATTR_PREFIX) ? raw.toString('latin1') : raw.toString('utf8');
    buf = buf.subarray(len);
  }
  return result;
}

let installed = false;

/** Idempotent: makes tar-stream keep xattr bytes exact. Call before extracting. */
export function installBinaryPaxDecoder(): void {
  if (installed) return;
  if (typeof headers.decodePax !== 'function') {
    throw new Error('tar-stream no longer has headers.decodePax: binary xattrs would be mangled; update tar-binary-pax.ts');
  }
  headers.decodePax = decodePaxBinarySafe;
  installed = true;
}

export function xattrsOfPax(pax: unknown): { name: string; value: Buffer }[] {
  if (!pax || typeof pax !== 'object') return [];
  const out: { name: string; value: Buffer }[] = [];
  for (const [k, v] of Object.entries(pax as Record<string, unknown>)) {
    if (k.startsWith(XATTR_PREFIX) && typeof v === 'string') out.push({ name: k.slice(XATTR_PREFIX.length), value: Buffer.from(v, 'latin1') });
  }
  return out;
}
