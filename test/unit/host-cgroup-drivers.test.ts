import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigSchema, defaultConfig } from '../../src/config/schema.js';
import { CricketError } from '../../src/core/errors.js';
import { RunPodSandboxRequest } from '../../src/gen/runtime/v1/api.js';
import { applyLimits, cgroupFsPath, containerCgroupsPath, defaultPodCgroup, ensureCgroup, slicePath, toCgroupPath } from '../../src/host/cgroups.js';
import { parsePsi, readCgroupStats, readOomKills, readSwapUsage } from '../../src/host/cgroup-stats.js';
import { readCgroupMetrics } from '../../src/host/cgroup-metrics.js';
import { missingPodCgroups } from '../../src/host/pod-cgroups.js';
import { resolveHandler } from '../../src/runtime/handler.js';
import { planPod } from '../../src/services/pods/validate.js';
import { removeDir, tempDir } from '../helpers/daemon.js';

// The path and resource mapping of both cgroup versions and both drivers, over fake
// trees (plain dirs and files), so it runs without root on any host. `make test-vm`
// runs the same code against a real cgroup v2 with systemd.

const isInvalid = (re: RegExp) => (e: unknown) => e instanceof CricketError && e.code === 'InvalidArgument' && re.test(e.message);
const ID = 'a'.repeat(64);

test('a cgroup parent must have the form of the configured driver, and the error names both', () => {
  assert.throws(() => toCgroupPath('/kubepods/burstable/pod1', 'systemd'), isInvalid(/"\/kubepods\/burstable\/pod1" is a cgroupfs path, but cgroup_driver is "systemd".*kubepods-besteffort-pod1\.slice/));
  assert.throws(() => toCgroupPath('kubepods-burstable-pod1.slice', 'cgroupfs'), isInvalid(/must be an absolute cgroup path.*is a systemd slice name, but cgroup_driver is "cgroupfs"/));
  for (const bad of ['-kubepods.slice', 'kubepods-.slice', 'kube--pods.slice']) assert.throws(() => toCgroupPath(bad, 'systemd'), isInvalid(/'-' starts, ends or doubles/), bad);
  assert.throws(() => toCgroupPath('kubepods', 'systemd'), isInvalid(/not a systemd slice name/));
  assert.equal(toCgroupPath('kubepods-burstable-pod1.slice', 'systemd'), '/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice');
  assert.equal(toCgroupPath('-.slice', 'systemd'), '/');

  // Through RunPodSandbox's planning: nothing is made for a refused parent.
  const req = (cgroupParent: string) =>
    RunPodSandboxRequest.fromPartial({ config: { metadata: { name: 'p', namespace: 'n', uid: 'u', attempt: 0 }, linux: { cgroupParent } } });
  const systemd = { ...defaultConfig(), runtime: { ...defaultConfig().runtime, cgroup_driver: 'systemd' as const } };
  assert.throws(() => planPod(req('/kubepods/pod1'), systemd, 'node'), isInvalid(/cgroup_driver is "systemd"/));
  assert.equal(planPod(req('kubepods-besteffort-podu.slice'), systemd, 'node').cgroupParent, '/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-podu.slice');
  assert.throws(() => planPod(req('kubepods-besteffort-podu.slice'), defaultConfig(), 'node'), isInvalid(/cgroup_driver is "cgroupfs"/));
});

test('pod and container cgroups per driver: cgroupfs leaves named by id, systemd runc scopes cricket-<id>.scope in the pod slice', () => {
  assert.equal(defaultPodCgroup(ID, 'cgroupfs'), `/cricket/${ID}`);
  assert.equal(defaultPodCgroup(ID, 'systemd'), `/cricket.slice/cricket-${ID}.slice`);
  const podSlice = slicePath('kubepods-burstable-pod1.slice');
  assert.equal(containerCgroupsPath('/kubepods/burstable/pod1', ID, 'cgroupfs'), `/kubepods/burstable/pod1/${ID}`);
  assert.equal(containerCgroupsPath('/', ID, 'cgroupfs'), `/${ID}`);
  const oci = containerCgroupsPath(podSlice, ID, 'systemd');
  assert.equal(oci, `kubepods-burstable-pod1.slice:cricket:${ID}`);
  // Where runc's systemd driver puts it, as the readers look for it.
  assert.equal(cgroupFsPath(oci), `${podSlice}/cricket-${ID}.scope`);
  assert.equal(cgroupFsPath(`system.slice::${ID}`), `/system.slice/${ID}.scope`);
  assert.equal(cgroupFsPath(`:cricket:${ID}`), `/cricket-${ID}.scope`, 'an empty slice is the root slice');
  assert.equal(cgroupFsPath(`/kubepods/pod1/${ID}`), `/kubepods/pod1/${ID}`, 'a cgroupfs path is left as it is');
});

test('the systemd driver notes the pod slice it will start, and nothing for a slice that exists (kubelet made it)', (t) => {
  const root = tempDir('cricket-cgroot-');
  t.after(() => removeDir(root));
  const path = slicePath('kubepods-besteffort-pod1.slice');
  assert.deepEqual(missingPodCgroups(path, 'systemd', root), ['systemd:kubepods-besteffort-pod1.slice']);
  mkdirSync(join(root, path), { recursive: true });
  assert.deepEqual(missingPodCgroups(path, 'systemd', root), []);
});

/** A fake cgroup v2 root: the controllers it has, the ones it delegates. */
function fakeV2(root: string, controllers: string, delegated: string): void {
  writeFileSync(join(root, 'cgroup.controllers'), `${controllers}\n`);
  writeFileSync(join(root, 'cgroup.procs'), '');
  writeFileSync(join(root, 'cgroup.subtree_control'), delegated);
}

test('cgroup v2: ensureCgroup delegates the controllers a level has to the next one down, and none below the new leaf', (t) => {
  const root = tempDir('cricket-cgroot-');
  t.after(() => removeDir(root));
  fakeV2(root, 'cpuset cpu io memory pids', 'memory pids');
  return (async () => {
    // The fake tree does not make a new directory's files as the kernel does: a level
    // made by us has no cgroup.controllers, so only the root's delegation is seen here.
    const created = await ensureCgroup('/cricket/pod1', root);
    assert.deepEqual(created, [join(root, 'cricket'), join(root, 'cricket', 'pod1')], 'one hierarchy on v2');
    // A plain file keeps the last write: what was not on yet was written, one at a time, ending with io.
    assert.equal(readFileSync(join(root, 'cgroup.subtree_control'), 'utf8'), '+io');
    assert.equal(existsSync(join(root, 'cricket', 'pod1', 'cgroup.subtree_control')), false, 'the leaf delegates nothing (it may hold a process)');
    // All on already: nothing written.
    writeFileSync(join(root, 'cgroup.subtree_control'), 'cpuset cpu io memory pids');
    await ensureCgroup('/cricket/pod2', root);
    assert.equal(readFileSync(join(root, 'cgroup.subtree_control'), 'utf8'), 'cpuset cpu io memory pids');
  })();
});

test('cgroup v2 stats: working set as kubelet computes it, cpu, pids, PSI, OOM kills, swap, read through runc systemd paths too', (t) => {
  const root = tempDir('cricket-cgroot-');
  t.after(() => removeDir(root));
  fakeV2(root, 'cpu memory pids', 'cpu memory pids');
  const oci = containerCgroupsPath(slicePath('kubepods-pod1.slice'), ID, 'systemd');
  const dir = join(root, cgroupFsPath(oci));
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'cpu.stat'), 'usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 4\nnr_throttled 1\nthrottled_usec 20\n');
  writeFileSync(join(dir, 'memory.current'), '10000\n');
  writeFileSync(join(dir, 'memory.max'), 'max\n');
  writeFileSync(join(dir, 'memory.stat'), 'anon 6000\nfile 4000\ninactive_file 2500\nactive_file 1500\npgfault 9\npgmajfault 2\n');
  writeFileSync(join(dir, 'memory.events'), 'low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n');
  writeFileSync(join(dir, 'memory.swap.current'), '512\n');
  writeFileSync(join(dir, 'pids.current'), '2\n');
  writeFileSync(join(dir, 'cpu.weight'), '20\n');
  writeFileSync(join(dir, 'cpu.max'), '50000 100000\n');
  writeFileSync(join(dir, 'cpu.pressure'), 'some avg10=1.50 avg60=0.25 avg300=0.00 total=12345\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n');
  writeFileSync(join(dir, 'memory.pressure'), 'some avg10=0.00 avg60=0.00 avg300=0.00 total=7\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=3\n');
  const s = readCgroupStats(oci, root);
  assert.equal(s.cpuUsageNs, 1_500_000n);
  assert.equal(s.memoryUsageBytes, 10000n);
  assert.equal(s.memoryWorkingSetBytes, 7500n, 'memory.current minus inactive_file');
  assert.equal(s.memoryRssBytes, 6000n);
  assert.equal(s.memoryLimitBytes, undefined, '"max" is no limit');
  assert.equal(s.pageFaults, 9n);
  assert.equal(s.majorPageFaults, 2n);
  assert.equal(s.processCount, 2n);
  assert.deepEqual(s.cpuPsi, { Some: { Total: 12345n, Avg10: 1.5, Avg60: 0.25, Avg300: 0 }, Full: { Total: 0n, Avg10: 0, Avg60: 0, Avg300: 0 } });
  assert.equal(s.memoryPsi?.Full?.Total, 3n);
  assert.equal(s.ioPsi, undefined, 'no io.pressure: no io PSI');
  assert.equal(readOomKills(oci, root), 1);
  assert.equal(readSwapUsage(oci, root), 512n);
  const m = readCgroupMetrics(oci, root);
  assert.equal(m.specCpuShares, 2n + (19n * 262142n) / 9999n, 'weight back to shares as cAdvisor does');
  assert.equal(m.specCpuQuota, 50000n);
  assert.equal(m.cfsThrottledNs, 20_000n);
  assert.equal(m.memoryFailcnt, 3n);
  // Working set never below zero (inactive_file counted when usage was lower).
  writeFileSync(join(dir, 'memory.current'), '2000\n');
  assert.equal(readCgroupStats(oci, root).memoryWorkingSetBytes, 0n);
  assert.equal(parsePsi(undefined), undefined);
  assert.equal(parsePsi('garbage\n'), undefined);
});

test('cgroup v2 limits: shares become cpu.weight as runc converts them, quota and period cpu.max, memory memory.max', (t) => {
  const root = tempDir('cricket-cgroot-');
  t.after(() => removeDir(root));
  fakeV2(root, 'cpu memory', 'cpu memory');
  mkdirSync(join(root, 'pod'));
  return (async () => {
    await applyLimits('/pod', { cpuShares: 512n, cpuQuota: 50000n, cpuPeriod: 200000n, memoryLimitBytes: 64n << 20n }, root);
    assert.equal(readFileSync(join(root, 'pod', 'cpu.weight'), 'utf8'), '20');
    assert.equal(readFileSync(join(root, 'pod', 'cpu.max'), 'utf8'), '50000 200000');
    assert.equal(readFileSync(join(root, 'pod', 'memory.max'), 'utf8'), String(64 << 20));
    await applyLimits('/pod', { cpuShares: 2n, cpuQuota: 1000n }, root);
    assert.equal(readFileSync(join(root, 'pod', 'cpu.weight'), 'utf8'), '1');
    assert.equal(readFileSync(join(root, 'pod', 'cpu.max'), 'utf8'), '1000 100000', 'the default period when none is given');
  })();
});

test('the systemd driver gives every runtime call --systemd-cgroup (runc makes the scopes through systemd); cgroupfs none', () => {
  const cfg = (driver: 'cgroupfs' | 'systemd', args: string[] = []) =>
    ConfigSchema.parse({ runtime: { cgroup_driver: driver, handlers: { runc: { runtime_args: args } } } });
  assert.deepEqual(resolveHandler(cfg('cgroupfs'), '')!.args, []);
  assert.deepEqual(resolveHandler(cfg('systemd'), '')!.args, ['--systemd-cgroup']);
  assert.deepEqual(resolveHandler(cfg('systemd', ['--systemd-cgroup', '--debug']), '')!.args, ['--systemd-cgroup', '--debug'], 'not twice');
});
