// Cgroup paths and files as the integration tests check them, for either cgroup
// version and either driver: `make test-vm` runs the suites on cgroup v2 once with
// cgroup_driver "cgroupfs" and once with "systemd" (CRICKET_TEST_CGROUP_DRIVER, which
// test/helpers/daemon.ts puts in every test daemon's config).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CGROUP_ROOT, cgroupFsPath, controllerDir, isCgroupV2, slicePath } from '../../src/host/cgroups.js';

export const TEST_CGROUP_DRIVER: 'cgroupfs' | 'systemd' = process.env['CRICKET_TEST_CGROUP_DRIVER'] === 'systemd' ? 'systemd' : 'cgroupfs';

export interface TestCgroupParent {
  /** What the CRI's cgroup_parent carries: /a/b (cgroupfs) or a-b.slice (systemd). */
  cri: string;
  /** Its cgroupfs path, relative to a controller root. */
  path: string;
  /** Removes what only the test's parent levels are (systemd makes a slice's parents implicitly and keeps them). */
  cleanup(): void;
}

/** A test's own cgroup parent, levels given top first ('-' and other marks become '_'). */
export function testCgroupParent(...levels: string[]): TestCgroupParent {
  const ls = levels.map((l) => l.replace(/[^A-Za-z0-9_]/g, '_'));
  if (TEST_CGROUP_DRIVER === 'systemd') {
    const cri = `${ls.join('-')}.slice`;
    return {
      cri,
      path: slicePath(cri),
      cleanup: () => {
        try {
          execFileSync('systemctl', ['stop', `${ls[0]}.slice`], { stdio: 'ignore' });
        } catch {
          // already gone
        }
      },
    };
  }
  const cri = `/${ls.join('/')}`;
  return { cri, path: cri, cleanup: () => {} };
}

/** A cgroup's directory for a controller (v1: that hierarchy; v2: the one tree); takes runc's "slice:prefix:name" too. */
export function cgroupDir(controller: string, cgroupsPath: string): string {
  return controllerDir(controller, cgroupFsPath(cgroupsPath));
}

/** Does an entry of a pod's cgroups.json (a directory, or "systemd:<unit>") still exist on the host? */
export function createdCgroupExists(entry: string): boolean {
  if (!entry.startsWith('systemd:')) return existsSync(entry);
  const unit = entry.slice('systemd:'.length);
  if (unit.endsWith('.slice')) return existsSync(join(CGROUP_ROOT, slicePath(unit)));
  try {
    return execFileSync('systemctl', ['is-active', unit], { encoding: 'utf8' }).trim() === 'active';
  } catch {
    return false;
  }
}

/** The leaf name a container's cgroup has: its id (cgroupfs) or runc's scope cricket-<id>.scope (systemd). */
export function containerLeaf(id: string): string {
  return TEST_CGROUP_DRIVER === 'systemd' ? `cricket-${id}.scope` : id;
}

/** A container's memory limit in bytes as the kernel holds it (v1 memory.limit_in_bytes, v2 memory.max). */
export function memoryLimitOf(cgroupsPath: string): string {
  const dir = cgroupDir('memory', cgroupsPath);
  return readFileSync(join(dir, isCgroupV2() ? 'memory.max' : 'memory.limit_in_bytes'), 'utf8').trim();
}

/**
 * A container's CPU shares as the kernel holds them: v1 cpu.shares itself; v2 cpu.weight,
 * which runc (and systemd's CPUWeight) fill from shares as 1 + ((shares - 2) * 9999) / 262142.
 */
export function cpuSharesOf(cgroupsPath: string): { file: string; value: string; expectFor(shares: number): string } {
  const v2 = isCgroupV2();
  const file = join(cgroupDir('cpu', cgroupsPath), v2 ? 'cpu.weight' : 'cpu.shares');
  return {
    file,
    value: readFileSync(file, 'utf8').trim(),
    expectFor: (shares) => String(v2 ? 1 + Math.floor(((shares - 2) * 9999) / 262142) : shares),
  };
}
