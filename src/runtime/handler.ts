import { readFileSync, statSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config, HandlerConfig } from '../config/schema.js';
import { run } from '../host/exec.js';

/**
 * A configured runtime handler as the driver uses it: the binary, its state root and
 * the global flags every call gets (--root first, then these).
 *
 * runtime_type "sandbox" is gVisor's runsc: ONE gVisor sandbox per pod, inside the
 * pod's pinned network namespace. RunPodSandbox starts it with an infra container
 * (catatonit -P, runtime/pod-sandbox.ts) and every container of the pod joins it
 * (runsc's annotations io.kubernetes.cri.container-type / sandbox-id), so the pod's
 * containers share gVisor's kernel: its PID namespace in PID mode POD, IPC, UTS, and
 * one sandbox's cost per pod. A joining container's stdout/stderr are those of whoever
 * runs `runsc start` (not of `runsc create`'s caller), and conmon cannot wait on its
 * pid; so conmon runs it through bin/cricket-runsc-join (scripts/runsc-join.sh), whose
 * holder process, conmon's child, owns conmon's stdio and runs `runsc start` and
 * `runsc wait` (logs, attach, TTYs, exit codes, durability across daemon SIGKILLs as
 * for runc). A container's own resource limits do not bound it inside the shared
 * sandbox: the pod's cgroup does (gVisor's model; kubelet sizes the pod cgroup).
 * Containers of gVisor pods recorded before this each kept a sandbox of their own.
 */
export interface RuntimeHandler {
  readonly name: string;
  readonly type: 'oci' | 'sandbox';
  readonly path: string;
  readonly root: string;
  /** Global flags after --root: the handler's runtime_args, and for runsc what this host needs. */
  readonly args: readonly string[];
  readonly config: Readonly<HandlerConfig>;
}

/** A handler by name ('' = the default); undefined when none has that name. */
export function resolveHandler(config: Readonly<Config>, name: string): RuntimeHandler | undefined {
  const n = name || config.runtime.default_handler;
  const h = config.runtime.handlers[n];
  if (!h) return undefined;
  const args = h.runtime_type === 'sandbox' ? sandboxRuntimeArgs(h.runtime_args) : [...h.runtime_args];
  // The systemd cgroup driver: the runtime makes each container's scope through systemd
  // (cgroupsPath "slice:cricket:<id>", see host/cgroups.ts containerCgroupsPath).
  if (config.runtime.cgroup_driver === 'systemd' && !hasFlag(args, 'systemd-cgroup')) args.push('--systemd-cgroup');
  return {
    name: n,
    type: h.runtime_type,
    path: h.path,
    root: h.root || join(config.daemon.run_root, n),
    args,
    config: h,
  };
}

const hasFlag = (args: readonly string[], flag: string) =>
  args.some((a) => a === `--${flag}` || a === `-${flag}` || a.startsWith(`--${flag}=`) || a.startsWith(`-${flag}=`));

/**
 * runsc's flags on this kind of host, unless runtime_args sets them:
 * - --network=host: runsc's own netstack (--network=sandbox) refuses to start, taking
 *   any namespace for the host's ("cannot run with network enabled in root network
 *   namespace": it tests for /proc/sys/net/core/rmem_default, which kernels since 6.x
 *   show in every network namespace). With host, the sandbox uses the host kernel's
 *   stack INSIDE the pod's own network namespace: the pod IP, CNI, port mappings and
 *   the netns-side port-forward all work as for runc pods.
 * - --overlay2=root:memory: with runsc's default (a file-backed overlay beside the
 *   rootfs) `runsc delete` fails once the rootfs mount is gone; in memory it does not
 *   care, and the container's writes still go nowhere on the host.
 * - --oci-seccomp: the spec's seccomp profile (RuntimeDefault, Localhost) is applied
 *   to the processes inside the sandbox too, as a pod's security context asks;
 *   without it runsc ignores linux.seccomp.
 */
export function sandboxRuntimeArgs(runtimeArgs: readonly string[]): string[] {
  const out = [...runtimeArgs];
  if (!hasFlag(out, 'network')) out.push('--network=host');
  if (!hasFlag(out, 'overlay2')) out.push('--overlay2=root:memory');
  if (!hasFlag(out, 'oci-seccomp')) out.push('--oci-seccomp');
  return out;
}

export type ProbeResult = { ok: true; version: string } | { ok: false; message: string };

const PROBE_TIMEOUT_MS = 10_000;
const probes = new Map<string, Promise<ProbeResult>>();

/**
 * Whether a handler's binary runs (`<path> --version`), with its own words when it
 * does not. Cached per binary (path, size, mtime), so Status and RunPodSandbox do not
 * spawn it every time yet see a replaced binary.
 */
export function probeHandler(h: Pick<RuntimeHandler, 'path'>): Promise<ProbeResult> {
  let key: string;
  try {
    const st = statSync(h.path);
    if (!st.isFile()) return Promise.resolve({ ok: false, message: `${h.path} is not a file` });
    key = `${h.path}\0${st.size}\0${st.mtimeMs}\0${st.mode}`;
  } catch (err) {
    return Promise.resolve({ ok: false, message: `${h.path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}` });
  }
  let p = probes.get(key);
  if (!p) {
    p = run(h.path, ['--version'], { timeoutMs: PROBE_TIMEOUT_MS, allowFailure: true }).then(
      (r): ProbeResult =>
        r.exitCode === 0
          ? { ok: true, version: r.stdout.trim().split('\n')[0] ?? '' }
          : { ok: false, message: `${h.path} --version exited with ${r.exitCode ?? r.signal}: ${(r.stderr || r.stdout).trim().slice(-500)}` },
      (err: unknown): ProbeResult => ({ ok: false, message: `cannot run ${h.path}: ${(err as Error).message}` }),
    );
    if (probes.size > 64) probes.clear();
    probes.set(key, p);
  }
  return p;
}

/**
 * Ends a process that `runsc exec --internal-pid-file` started inside a sandbox. The
 * host side of a gVisor exec is only runsc talking to the sandbox: killing it (what
 * ends a runc exec) leaves the process running inside, so it is signalled there by
 * its sandbox pid. Quietly does nothing when the file is not written yet or the
 * process is gone.
 */
export async function killSandboxProcess(
  o: { runtimePath: string; runtimeRoot: string; runtimeArgs: readonly string[]; id: string },
  internalPidFile: string,
): Promise<void> {
  let pid = 0;
  try {
    pid = Number(readFileSync(internalPidFile, 'utf8').trim());
  } catch {
    return;
  }
  if (!Number.isInteger(pid) || pid < 1) return;
  await run(o.runtimePath, ['--root', o.runtimeRoot, ...o.runtimeArgs, 'kill', '--pid', String(pid), o.id, 'KILL'], {
    timeoutMs: PROBE_TIMEOUT_MS,
    allowFailure: true,
  }).catch(() => {});
}

/**
 * What runsc leaves in its root for a container whose sandbox died while being created
 * (e.g. OOM-killed booting): a lock file and a control socket that `runsc delete
 * --force` does not remove, as it no longer knows the container. Only names carrying
 * this container's id are touched.
 */
export async function removeSandboxLeftovers(root: string, id: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(root);
  } catch {
    return;
  }
  for (const n of names) {
    if (n === `runsc-${id}.sock` || n.startsWith(`${id}_sandbox:${id}.`)) await rm(join(root, n), { force: true });
  }
}
