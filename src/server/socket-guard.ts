import { chmodSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import { failedPrecondition, invalidArgument } from '../core/errors.js';

/**
 * Makes a unix socket path ready to bind: parent dirs exist, and a leftover socket
 * from a daemon that died is removed — but only after proving nobody answers on it,
 * so a second cricketd can never steal a live daemon's socket. A path that is not
 * a socket is never deleted.
 */
export async function prepareSocketPath(path: string): Promise<void> {
  if (Buffer.byteLength(path) > 107) {
    throw invalidArgument(`socket path ${path} is ${Buffer.byteLength(path)} bytes; unix sockets allow at most 107`);
  }
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  } catch (err) {
    throw failedPrecondition(`cannot create socket directory ${dirname(path)}: ${(err as Error).message}`);
  }
  let st;
  try {
    st = lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw failedPrecondition(`cannot inspect socket path ${path}: ${(err as Error).message}`);
  }
  if (!st.isSocket()) throw failedPrecondition(`${path} exists and is not a socket; refusing to replace it`);
  if (await answers(path)) throw failedPrecondition(`another daemon is already serving ${path}`);
  try {
    unlinkSync(path);
  } catch (err) {
    throw failedPrecondition(`cannot remove stale socket ${path}: ${(err as Error).message}`);
  }
}

/** Fails if a live process answers on path; touches nothing. */
export async function assertSocketFree(path: string): Promise<void> {
  let isSocket = false;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return;
  }
  if (isSocket && (await answers(path))) throw failedPrecondition(`another daemon is already serving ${path}`);
}

function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect(path);
    const done = (v: boolean) => {
      sock.destroy();
      resolve(v);
    };
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
    sock.setTimeout(2000, () => done(true)); // a hung peer still holds it
  });
}

/** kubelet and crictl run as root; group access lets an admin group use the CLI. */
export function restrictSocket(path: string): void {
  chmodSync(path, 0o660);
}

export function removeSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    // already gone
  }
}
