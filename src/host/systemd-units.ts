import { existsSync, readFileSync } from 'node:fs';
import { CricketError, failedPrecondition } from '../core/errors.js';
import { run } from './exec.js';

/**
 * The few systemd unit operations the systemd cgroup driver needs, through systemd's
 * own tools (systemctl, busctl) rather than a D-Bus library: a pod's slice made and
 * removed, and the pod init placed in a scope. Containers' scopes are runc's own
 * (--systemd-cgroup: runc speaks D-Bus to systemd itself).
 */
const SYSTEMCTL_TIMEOUT_MS = 30_000;

/** Is systemd the init system here (what sd_booted(3) tests)? */
export function systemdRunning(): boolean {
  return existsSync('/run/systemd/system');
}

function needSystemd(what: string): void {
  if (!systemdRunning()) throw failedPrecondition(`${what}: cgroup_driver is "systemd" but systemd is not running on this host (no /run/systemd/system)`);
}

/**
 * Starts a slice unit by name. A slice needs no unit file: systemd makes it from its
 * name, with its parents (kubepods-burstable-pod1.slice under kubepods-burstable.slice
 * under kubepods.slice), and `systemctl start` waits for the job.
 */
export async function startSlice(name: string, signal?: AbortSignal): Promise<void> {
  needSystemd(`start ${name}`);
  await run('systemctl', ['start', name], { signal, timeoutMs: SYSTEMCTL_TIMEOUT_MS });
}

/**
 * Stops a unit (a slice stops what is in it); one systemd does not know is fine: a
 * scope is unloaded once its processes are gone (systemctl: exit 5, "not loaded").
 */
export async function stopUnit(name: string, signal?: AbortSignal): Promise<void> {
  if (!systemdRunning()) return;
  const r = await run('systemctl', ['stop', name], { signal, timeoutMs: SYSTEMCTL_TIMEOUT_MS, allowFailure: true });
  if (r.exitCode === 0 || (r.exitCode === 5 && /not loaded/.test(r.stderr))) return;
  throw new CricketError('Internal', `systemctl stop ${name} failed (exit code ${r.exitCode}): ${r.stderr.trim().slice(-500)}`);
}

/**
 * Puts a running process in a new transient scope unit inside a slice (what runc does
 * for a container): Manager.StartTransientUnit with PIDs and Slice. The call returns
 * once the job is queued, so we wait until the kernel shows the process in the scope.
 */
export async function moveToScope(scope: string, slice: string, pid: number, signal?: AbortSignal): Promise<void> {
  needSystemd(`start ${scope}`);
  await run(
    'busctl',
    ['call', 'org.freedesktop.systemd1', '/org/freedesktop/systemd1', 'org.freedesktop.systemd1.Manager', 'StartTransientUnit', 'ssa(sv)a(sa(sv))',
      scope, 'fail', '3', 'PIDs', 'au', '1', String(pid), 'Slice', 's', slice, 'Description', 's', `cricket pod init ${pid}`, '0'],
    { signal, timeoutMs: SYSTEMCTL_TIMEOUT_MS },
  );
  for (let i = 0; i < 500; i++) {
    let cg: string;
    try {
      cg = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
    } catch {
      return; // exited: nothing left to place (its stop tears the scope down)
    }
    if (cg.includes(`/${scope}\n`)) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw failedPrecondition(`process ${pid} did not appear in ${scope} within 5 s`);
}
