import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureCgroup, parseKeyed, removeCgroup, toCgroupPath } from '../../src/host/cgroups.js';
import { readCgroupStats } from '../../src/host/cgroup-stats.js';
import { parseNetDev, sysctlKind, sysctlProcPath } from '../../src/host/netns.js';
import { removeDir, tempDir } from '../helpers/daemon.js';

test('cgroup parents: cgroupfs paths are checked, systemd slices expand', () => {
  assert.equal(toCgroupPath('/kubepods/burstable/pod1/', 'cgroupfs'), '/kubepods/burstable/pod1');
  assert.equal(toCgroupPath('kubepods-besteffort-pod1.slice', 'systemd'), '/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice');
  assert.throws(() => toCgroupPath('/already/a/path', 'systemd'), /cgroupfs path, but cgroup_driver is "systemd"/);
  assert.throws(() => toCgroupPath('kubepods', 'cgroupfs'), /absolute/);
  assert.throws(() => toCgroupPath('not a slice', 'systemd'), /slice/);
  assert.throws(() => toCgroupPath('/a/../b', 'cgroupfs'), /invalid element/);
});

test('ensureCgroup creates every level in every v1 hierarchy (cpuset inherits cpus/mems) and removeCgroup undoes exactly that', (t) => {
  const root = tempDir('cricket-cgroot-');
  t.after(() => removeDir(root));
  for (const c of ['cpu', 'cpuset', 'memory', 'pids']) {
    mkdirSync(join(root, c, 'kubepods'), { recursive: true });
    writeFileSync(join(root, c, 'cgroup.procs'), '');
  }
  writeFileSync(join(root, 'cpuset', 'kubepods', 'cpuset.cpus'), '0-1');
  writeFileSync(join(root, 'cpuset', 'kubepods', 'cpuset.mems'), '0');
  return (async () => {
    const created = await ensureCgroup('/kubepods/pod1/inner', root);
    assert.equal(created.length, 8);
    assert.equal(readFileSync(join(root, 'cpuset', 'kubepods', 'pod1', 'inner', 'cpuset.cpus'), 'utf8'), '0-1');
    assert.equal(readFileSync(join(root, 'cpuset', 'kubepods', 'pod1', 'cpuset.mems'), 'utf8'), '0');
    assert.deepEqual(await ensureCgroup('/kubepods/pod1/inner', root), [], 'nothing new the second time');
    // Fake cgroupfs dirs hold files, so empty the cpuset ones as the kernel would.
    for (const d of ['pod1/inner', 'pod1']) for (const f of ['cpuset.cpus', 'cpuset.mems']) removeDir(join(root, 'cpuset', 'kubepods', d, f));
    await removeCgroup(created);
    assert.equal(existsSync(join(root, 'memory', 'kubepods', 'pod1')), false);
    assert.equal(existsSync(join(root, 'memory', 'kubepods')), true, 'what existed before stays');
  })();
});

test('cgroup v1 stats: working set is usage minus inactive file', (t) => {
  const root = tempDir('cricket-cgroot-');
  t.after(() => removeDir(root));
  for (const c of ['cpuacct', 'memory', 'pids']) mkdirSync(join(root, c, 'p'), { recursive: true });
  writeFileSync(join(root, 'cpuacct', 'p', 'cpuacct.usage'), '123456789\n');
  writeFileSync(join(root, 'memory', 'p', 'memory.usage_in_bytes'), '1000\n');
  writeFileSync(join(root, 'memory', 'p', 'memory.limit_in_bytes'), '4096\n');
  writeFileSync(join(root, 'memory', 'p', 'memory.stat'), 'cache 5\ntotal_inactive_file 300\ntotal_rss 600\ntotal_pgfault 7\ntotal_pgmajfault 1\n');
  writeFileSync(join(root, 'pids', 'p', 'pids.current'), '3\n');
  const s = readCgroupStats('/p', root);
  assert.equal(s.cpuUsageNs, 123456789n);
  assert.equal(s.memoryUsageBytes, 1000n);
  assert.equal(s.memoryWorkingSetBytes, 700n);
  assert.equal(s.memoryRssBytes, 600n);
  assert.equal(s.memoryLimitBytes, 4096n);
  assert.equal(s.pageFaults, 7n);
  assert.equal(s.majorPageFaults, 1n);
  assert.equal(s.processCount, 3n);
  assert.equal(readCgroupStats('/absent', root).cpuUsageNs, undefined);
  assert.deepEqual(parseKeyed('a 1\nb x\n c 2'), { a: 1n, c: 2n });
});

test('/proc/net/dev parsing and sysctl classification', () => {
  const text = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0
  eth0:    5000      40    1    0    0     0          0         0     3000      30    2    0    0     0       0          0
`;
  assert.deepEqual(parseNetDev(text), [
    { name: 'lo', rxBytes: 100n, rxPackets: 2n, rxErrors: 0n, rxDropped: 0n, txBytes: 100n, txPackets: 2n, txErrors: 0n, txDropped: 0n },
    { name: 'eth0', rxBytes: 5000n, rxPackets: 40n, rxErrors: 1n, rxDropped: 0n, txBytes: 3000n, txPackets: 30n, txErrors: 2n, txDropped: 0n },
  ]);
  assert.equal(sysctlKind('net.ipv4.tcp_syncookies'), 'net');
  assert.equal(sysctlKind('kernel.shmmax'), 'ipc');
  assert.equal(sysctlKind('fs.mqueue.msg_max'), 'ipc');
  assert.equal(sysctlKind('kernel.panic'), undefined);
  assert.equal(sysctlProcPath('net.ipv4.ip_forward'), 'net/ipv4/ip_forward');
  assert.equal(sysctlProcPath('net/ipv4/conf/eth0.100/forwarding'), 'net/ipv4/conf/eth0.100/forwarding');
  assert.throws(() => sysctlProcPath('../etc'), /not a valid sysctl/);
});
