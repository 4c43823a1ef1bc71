import { invalidArgument } from '../core/errors.js';
import type { KeyValue } from '../gen/runtime/v1/api.js';
import type { OciImageRunConfig } from './types.js';

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** Bigger than any sane command line; a request beyond it is refused, not passed to the kernel's E2BIG. */
export const MAX_ARGS_ENV_BYTES = 1 << 20;

/**
 * kubelet's rules (as Docker's): `command` replaces the image Entrypoint and then the
 * image Cmd is dropped; `args` alone replaces only the Cmd; with neither the image
 * decides.
 */
export function mergeArgs(command: readonly string[], args: readonly string[], image: Readonly<OciImageRunConfig>): string[] {
  let entrypoint: readonly string[];
  let cmd: readonly string[];
  if (command.length > 0) {
    entrypoint = command;
    cmd = args;
  } else {
    entrypoint = image.Entrypoint ?? [];
    cmd = args.length > 0 ? args : (image.Cmd ?? []);
  }
  const out = [...entrypoint, ...cmd];
  if (out.length === 0) throw invalidArgument('no command to run: the container config has no command or args and the image has no Entrypoint or Cmd');
  return out;
}

/** Image Env first, then the CRI envs override by name; PATH and HOSTNAME/HOME filled when missing. */
export function mergeEnv(
  imageEnv: readonly string[] | undefined,
  envs: readonly KeyValue[],
  extra: { hostname: string; home: string },
): string[] {
  const map = new Map<string, string>();
  for (const e of imageEnv ?? []) {
    const i = e.indexOf('=');
    if (i <= 0) continue;
    map.set(e.slice(0, i), e.slice(i + 1));
  }
  for (const kv of envs) {
    const value = Buffer.isBuffer(kv.value) ? kv.value.toString('utf8') : String(kv.value);
    if (kv.key === '' || kv.key.includes('=') || kv.key.includes('\0') || value.includes('\0')) {
      throw invalidArgument(`environment variable name "${kv.key.slice(0, 64)}" is not valid: it must be non-empty without "=" or NUL`);
    }
    map.set(kv.key, value);
  }
  if (!map.has('PATH')) map.set('PATH', DEFAULT_PATH);
  if (!map.has('HOSTNAME') && extra.hostname) map.set('HOSTNAME', extra.hostname);
  if (!map.has('HOME')) map.set('HOME', extra.home || '/');
  return [...map].map(([k, v]) => `${k}=${v}`);
}

export function checkPayloadSize(args: readonly string[], env: readonly string[]): void {
  let bytes = 0;
  for (const s of args) bytes += Buffer.byteLength(s) + 1;
  for (const s of env) bytes += Buffer.byteLength(s) + 1;
  if (bytes > MAX_ARGS_ENV_BYTES) {
    throw invalidArgument(`command, args and env total ${bytes} bytes; the limit is ${MAX_ARGS_ENV_BYTES} bytes — move large data into a file or a volume`);
  }
  for (const a of args) if (a.includes('\0')) throw invalidArgument('a command argument contains a NUL byte');
}
