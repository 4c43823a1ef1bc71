import { spawn } from 'node:child_process';
import { existsSync, openSync, closeSync, readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import type { OpContext } from '../core/context.js';
import { abortError, CricketError } from '../core/errors.js';
import { run } from '../host/exec.js';
import { writeFileAtomic } from '../store/atomic-write.js';
import { JOIN_WRAPPER_NAME } from './conmon-control.js';
import { removeSandboxLeftovers } from './handler.js';

/**
 * A pod's gVisor sandbox (runtime_type "sandbox"): one runsc sandbox per pod, started
 * by RunPodSandbox with an infra container (catatonit -P, bound in from the host: no
 * image) whose id is the pod's. Every container of the pod joins it (the annotations
 * io.kubernetes.cri.container-type = container and io.kubernetes.cri.sandbox-id), run
 * by conmon through cricket-runsc-join (scripts/runsc-join.sh, see there why).
 *
 * The infra container has no conmon: nothing reads its stdio (/dev/null) and its exit
 * is the pod's end, which recovery sees from the sandbox process itself. The sandbox
 * process is runsc's child at first, then the daemon's subreaper's (catatonit), so it
 * outlives the daemon like every conmon.
 */
export interface SandboxInfra {
  /** runsc's container id of the infra container: the pod id. */
  readonly id: string;
  readonly runtimePath: string;
  readonly runtimeRoot: string;
  readonly runtimeArgs: readonly string[];
  /** The infra container's bundle (config.json, rootfs, pid), inside the pod's run dir. */
  readonly bundleDir: string;
  /** The sandbox's cgroup (relative to a controller root), which runsc makes. */
  readonly cgroupsPath: string;
}

/** What a pod's run dir notes about its sandbox before it is made, so recovery can undo an interrupted RunPodSandbox. */
export const SANDBOX_NOTE = 'sandbox.json';
/** The infra container's bundle directory inside a pod's run dir. */
export const INFRA_DIR = 'infra';

const RUNSC_TIMEOUT_MS = 60_000;

/** The runtime conmon runs for a joining container: bin/cricket-runsc-join beside dist/ (make build and make install put it there). */
export function joinWrapperPath(): string {
  return fileURLToPath(new URL(`../../../bin/${JOIN_WRAPPER_NAME}`, import.meta.url));
}

/** Global runsc flags for the wrapper: the handler's, plus which runsc to run. */
export function joinWrapperArgs(runtimePath: string, runtimeArgs: readonly string[]): string[] {
  return [...runtimeArgs, `--cricket-runsc=${runtimePath}`];
}

/**
 * Writes the infra bundle and starts the sandbox: `runsc create` (its stdio /dev/null,
 * stderr into a file of the bundle: the sandbox process inherits them and keeps them
 * for its life, so a pipe would never reach EOF), then `runsc start`. Returns the
 * sandbox's host pid.
 */
export async function startSandboxInfra(ctx: OpContext, infra: SandboxInfra, spec: object, podDir: string): Promise<number> {
  const wrapper = joinWrapperPath();
  if (!existsSync(wrapper)) throw new CricketError('FailedPrecondition', `${wrapper} is missing (make build installs it): the pod's containers could not join its gVisor sandbox`);
  await writeFileAtomic(join(podDir, SANDBOX_NOTE), JSON.stringify(infra));
  const rootfs = join(infra.bundleDir, 'rootfs');
  await mkdir(rootfs, { recursive: true, mode: 0o755 });
  // The mount point of the catatonit bind (the rootfs is read-only).
  await writeFile(join(rootfs, 'catatonit'), '', { mode: 0o755 });
  await writeFileAtomic(join(infra.bundleDir, 'config.json'), JSON.stringify(spec), 0o600);
  const g = ['--root', infra.runtimeRoot, ...infra.runtimeArgs];
  const errPath = join(infra.bundleDir, 'create.err');
  const pidPath = join(infra.bundleDir, 'pid');
  await spawnToExit(ctx, infra.runtimePath, [...g, 'create', '--bundle', infra.bundleDir, '--pid-file', pidPath, infra.id], errPath);
  await run(infra.runtimePath, [...g, 'start', infra.id], { signal: ctx.signal, timeoutMs: RUNSC_TIMEOUT_MS, failCode: 'FailedPrecondition' });
  return Number((await readFile(pidPath, 'utf8')).trim());
}

/** Kills and deletes the sandbox, with every container still in it; nothing there is not an error. */
export async function removeSandboxInfra(ctx: OpContext, infra: SandboxInfra): Promise<void> {
  const r = await run(infra.runtimePath, ['--root', infra.runtimeRoot, ...infra.runtimeArgs, 'delete', '--force', infra.id], {
    signal: ctx.signal,
    timeoutMs: RUNSC_TIMEOUT_MS,
    allowFailure: true,
  });
  if (r.exitCode !== 0 && !/does not exist|not found|no such file/i.test(r.stderr)) {
    throw new CricketError('Internal', `runsc delete ${infra.id}: ${r.stderr.trim().slice(-500)}`);
  }
  await removeSandboxLeftovers(infra.runtimeRoot, infra.id);
}

/** Is the pod's sandbox process still there? Its pid file, checked against the command line (a reused pid is not it). */
export function sandboxInfraAlive(infra: Pick<SandboxInfra, 'id' | 'bundleDir'>): boolean {
  try {
    const pid = Number(readFileSync(join(infra.bundleDir, 'pid'), 'utf8').trim());
    if (!(pid > 0)) return false;
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return argv.includes('boot') && argv.includes(infra.id);
  } catch {
    return false;
  }
}

/** The sandbox a pod's run dir notes (written before it was made), for undoing an interrupted RunPodSandbox. */
export function readSandboxNote(podDir: string): SandboxInfra | undefined {
  const p = join(podDir, SANDBOX_NOTE);
  if (!existsSync(p)) return undefined;
  try {
    const n = JSON.parse(readFileSync(p, 'utf8')) as SandboxInfra;
    return typeof n.id === 'string' && typeof n.runtimePath === 'string' ? n : undefined;
  } catch {
    return undefined;
  }
}

/** Runs a program with stdio /dev/null and stderr into a file (read back for the error), bounded by the signal and a timeout. */
function spawnToExit(ctx: OpContext, file: string, args: string[], errPath: string): Promise<void> {
  return new Promise((resolve, reject) => {
    if (ctx.signal.aborted) return reject(abortError(ctx.signal, `${file} create`));
    const fd = openSync(errPath, 'w', 0o600);
    let child;
    try {
      child = spawn(file, args, { stdio: ['ignore', 'ignore', fd] });
    } catch (err) {
      closeSync(fd);
      return reject(new CricketError('FailedPrecondition', `cannot run ${file}: ${(err as Error).message}`, { cause: err }));
    } finally {
      // The child has its own copy.
    }
    closeSync(fd);
    let why: CricketError | undefined;
    const kill = (e: CricketError) => {
      why ??= e;
      child.kill('SIGKILL');
    };
    const timer = setTimeout(() => kill(new CricketError('DeadlineExceeded', `runsc create timed out after ${RUNSC_TIMEOUT_MS} ms`)), RUNSC_TIMEOUT_MS);
    const onAbort = () => kill(abortError(ctx.signal, 'runsc create'));
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    child.once('error', (err) => kill(new CricketError('FailedPrecondition', `cannot run ${file}: ${err.message}`, { cause: err })));
    child.once('exit', (code, sig) => {
      clearTimeout(timer);
      ctx.signal.removeEventListener('abort', onAbort);
      if (why) return reject(why);
      if (code === 0) return resolve();
      let text = '';
      try {
        text = readFileSync(errPath, 'utf8').trim().slice(-1500);
      } catch {
        // no file
      }
      reject(new CricketError('FailedPrecondition', `runsc create of the pod's gVisor sandbox exited with ${code ?? sig}: ${text}`));
    });
  });
}

export interface SandboxContainerUsage {
  cpuUsageNs: bigint | undefined;
  memoryUsageBytes: bigint | undefined;
  processCount: bigint | undefined;
}

/**
 * A joining container's usage as gVisor's kernel counts it (`runsc events --stats`):
 * its host cgroup is empty, every process of the pod running in the sandbox's.
 * undefined when runsc cannot say (the container or sandbox is gone).
 */
export async function sandboxContainerUsage(
  o: { runtimePath: string; runtimeRoot: string; runtimeArgs: readonly string[]; id: string },
  signal?: AbortSignal,
): Promise<SandboxContainerUsage | undefined> {
  // Asked twice at most: once under load (load average 6) a running container's stats
  // came back without CPU time (the call failed or had no total: not reproduced since);
  // a container that ran at all has a total.
  let usage: SandboxContainerUsage | undefined;
  for (let attempt = 0; attempt < 2 && usage?.cpuUsageNs === undefined; attempt++) usage = (await readUsage(o, signal)) ?? usage;
  return usage;
}

async function readUsage(
  o: { runtimePath: string; runtimeRoot: string; runtimeArgs: readonly string[]; id: string },
  signal?: AbortSignal,
): Promise<SandboxContainerUsage | undefined> {
  const r = await run(o.runtimePath, ['--root', o.runtimeRoot, ...o.runtimeArgs, 'events', '--stats', o.id], {
    signal,
    timeoutMs: 10_000,
    allowFailure: true,
  }).catch(() => undefined);
  if (!r || r.exitCode !== 0) return undefined;
  try {
    const ev = JSON.parse(r.stdout.trim().split('\n')[0] ?? '') as {
      data?: { cpu?: { usage?: { total?: number } }; memory?: { usage?: { usage?: number } }; pids?: { current?: number } };
    };
    const big = (n: number | undefined) => (typeof n === 'number' && Number.isFinite(n) ? BigInt(Math.round(n)) : undefined);
    return { cpuUsageNs: big(ev.data?.cpu?.usage?.total), memoryUsageBytes: big(ev.data?.memory?.usage?.usage), processCount: big(ev.data?.pids?.current) };
  } catch {
    return undefined;
  }
}
