import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CricketError } from '../../src/core/errors.js';
import {
  ContainerConfig,
  MountPropagation,
  NamespaceMode,
  PodSandboxConfig,
  SecurityProfile_ProfileType,
  Signal,
  type DeepPartial,
} from '../../src/gen/runtime/v1/api.js';
import { CAPABILITY_NAMES } from '../../src/core/capability-names.js';
import { decodeCapMask } from '../../src/host/capabilities.js';
import { computeCapabilities, DEFAULT_CAPABILITIES } from '../../src/oci/capabilities.js';
import { mergeArgs, mergeEnv } from '../../src/oci/process-args.js';
import { convertResources, type ResourceFacts } from '../../src/oci/resources.js';
import { defaultSeccompProfile, parseSeccompProfile } from '../../src/oci/seccomp-default.js';
import { DEFAULT_MASKED_PATHS } from '../../src/oci/security-paths.js';
import { buildSpec, seccompChoice, type HostFacts, type SpecInput } from '../../src/oci/spec.js';
import { testFacts } from '../helpers/host-facts.js';
import { chooseStopSignal, normalizeSignal } from '../../src/oci/stop-signal.js';
import { resolveUser } from '../../src/oci/user.js';
import type { SandboxView } from '../../src/services/pods/api.js';

const ALL = CAPABILITY_NAMES.map((n) => `CAP_${n}`);
const facts: HostFacts = testFacts({ bounding: new Set(ALL.filter((c) => c !== 'CAP_SYS_RESOURCE')), hugepageSizes: ['2MB'] });

const sandbox = (extra: Partial<SandboxView> = {}): SandboxView => ({
  id: 'p'.repeat(64),
  state: 'ready',
  config: PodSandboxConfig.fromPartial({}),
  runtimeHandler: '',
  netnsPath: '/run/netns/n',
  ipcnsPath: '/run/ipc/i',
  utsnsPath: '/run/uts/u',
  pidnsPath: undefined,
  hostname: 'podhost',
  hostsPath: '/pod/hosts',
  resolvConfPath: '/pod/resolv.conf',
  shmPath: '/pod/shm',
  cgroupParent: '/kubepods/pod1',
  logDirectory: '/var/log/pods/x',
  ips: [],
  gvisorSandboxId: undefined,
  ...extra,
});

function input(cfg: DeepPartial<ContainerConfig>, extra: Partial<SpecInput> = {}): SpecInput {
  return {
    config: ContainerConfig.fromPartial({ metadata: { name: 'c' }, image: { image: 'img' }, ...cfg }),
    image: { Cmd: ['/bin/sh'], Env: ['PATH=/bin', 'A=image'] },
    sandbox: sandbox(),
    user: { uid: 0, gid: 0, additionalGids: [], home: '/root', username: 'root' },
    rootfsPath: '/run/c/rootfs',
    cgroupsPath: '/kubepods/pod1/abc',
    hostnamePath: '/run/c/hostname',
    mounts: [],
    devices: [],
    targetPidnsPath: undefined,
    localhostSeccomp: undefined,
    facts,
    ...extra,
  };
}

const throwsCode = (fn: () => unknown, code: string, re?: RegExp) =>
  assert.throws(fn, (e: unknown) => e instanceof CricketError && e.code === code && (!re || re.test(e.message)));

test('args merge as kubelet expects', () => {
  const image = { Entrypoint: ['/ep'], Cmd: ['default'] };
  const table: [string[], string[], string[]][] = [
    [[], [], ['/ep', 'default']],
    [[], ['x'], ['/ep', 'x']],
    [['/cmd'], [], ['/cmd']],
    [['/cmd'], ['y'], ['/cmd', 'y']],
  ];
  for (const [command, args, want] of table) assert.deepEqual(mergeArgs(command, args, image), want, `${command} ${args}`);
  throwsCode(() => mergeArgs([], [], {}), 'InvalidArgument', /no command/);
});

test('env: CRI overrides image; PATH, HOSTNAME and HOME filled when missing; bad names refused', () => {
  const env = mergeEnv(['A=1', 'B=2'], [{ key: 'B', value: Buffer.from('3') }], { hostname: 'h', home: '/home/u' });
  assert.deepEqual(env.sort(), ['A=1', 'B=3', 'HOME=/home/u', 'HOSTNAME=h', `PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`].sort());
  throwsCode(() => mergeEnv([], [{ key: 'A=B', value: Buffer.from('') }], { hostname: '', home: '' }), 'InvalidArgument');
});

test('capabilities: defaults, add/drop, ALL, privileged, bounded by the daemon', () => {
  const run = (add: string[], drop: string[], privileged = false) => computeCapabilities({ privileged, add, drop, ambient: [], bounding: facts.bounding }).bounding;
  assert.deepEqual(run([], []).sort(), [...DEFAULT_CAPABILITIES].sort());
  assert.ok(run(['net_admin'], ['CAP_CHOWN']).includes('CAP_NET_ADMIN'));
  assert.ok(!run(['net_admin'], ['CAP_CHOWN']).includes('CAP_CHOWN'));
  assert.deepEqual(run([], ['ALL']), []);
  assert.deepEqual(run(['NET_RAW'], ['ALL']), ['CAP_NET_RAW']);
  const all = run(['ALL'], []);
  assert.ok(!all.includes('CAP_SYS_RESOURCE'), 'kept within the bounding set');
  assert.equal(all.length, ALL.length - 1);
  assert.deepEqual(run([], ['ALL'], true), all, 'privileged ignores drops');
  throwsCode(() => run(['WINGS'], []), 'InvalidArgument', /unknown capability/);
  assert.deepEqual(decodeCapMask('3'), ['CAP_CHOWN', 'CAP_DAC_OVERRIDE']);
});

test('users: numeric, by name, image USER with group, supplemental groups and policy', () => {
  const passwd = 'root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n';
  const group = 'root:x:0:\napp:x:1001:\nextra:x:2000:app\n';
  const base = { runAsUser: undefined, runAsGroup: undefined, runAsUsername: '', imageUser: undefined, supplementalGroups: [], strictGroups: false, passwd, group };
  // The primary gid leads the additional ones, as containerd sets them.
  assert.deepEqual(resolveUser(base), { uid: 0, gid: 0, additionalGids: [0], home: '/root', username: 'root' });
  assert.deepEqual(resolveUser({ ...base, imageUser: 'app' }), { uid: 1000, gid: 1001, additionalGids: [1001, 2000], home: '/home/app', username: 'app' });
  assert.equal(resolveUser({ ...base, imageUser: 'app:root' }).gid, 0);
  assert.equal(resolveUser({ ...base, imageUser: '5:6' }).gid, 6);
  assert.deepEqual(resolveUser({ ...base, runAsUsername: 'app', strictGroups: true, supplementalGroups: [7n] }).additionalGids, [1001, 7]);
  assert.deepEqual(resolveUser({ ...base, runAsUsername: 'app', supplementalGroups: [7n, 2000n] }).additionalGids, [1001, 2000, 7]);
  assert.equal(resolveUser({ ...base, runAsUser: 1000n, imageUser: 'root' }).uid, 1000);
  assert.equal(resolveUser({ ...base, runAsUser: 1000n, runAsGroup: 3n }).gid, 3);
  throwsCode(() => resolveUser({ ...base, runAsUsername: 'ghost' }), 'InvalidArgument', /not in the image's \/etc\/passwd/);
  throwsCode(() => resolveUser({ ...base, imageUser: 'app:nogroup' }), 'InvalidArgument');
  throwsCode(() => resolveUser({ ...base, runAsUser: -1n }), 'InvalidArgument');
  throwsCode(() => resolveUser({ ...base, runAsGroup: 5n, imageUser: 'app' }), 'InvalidArgument', /without run_as_user/);
  assert.equal(resolveUser({ ...base, runAsGroup: 5n, runAsUsername: 'app' }).gid, 5);
});

test('resources: conversion, zero means unset, oom_score_adj clamped, absurd values refused', () => {
  const f: ResourceFacts = facts;
  const ok = convertResources(
    { cpuPeriod: 100000n, cpuQuota: 50000n, cpuShares: 512n, memoryLimitInBytes: 64n << 20n, oomScoreAdj: -900n, cpusetCpus: '0-1', cpusetMems: '0', hugepageLimits: [{ pageSize: '2MB', limit: 1n << 21n }], unified: {}, memorySwapLimitInBytes: 128n << 20n },
    f,
  );
  assert.deepEqual(ok.resources.cpu, { shares: 512, period: 100000, quota: 50000, cpus: '0-1', mems: '0' });
  assert.deepEqual(ok.resources.memory, { limit: 64 << 20, swap: 128 << 20 });
  assert.equal(ok.oomScoreAdj, 0, 'clamped to the daemon own value');
  assert.equal(convertResources({ cpuPeriod: 0n, cpuQuota: 0n, cpuShares: 0n, memoryLimitInBytes: 0n, oomScoreAdj: 500n, cpusetCpus: '', cpusetMems: '', hugepageLimits: [], unified: {}, memorySwapLimitInBytes: 0n }, { ...f, clampOomScoreAdj: false }).oomScoreAdj, 500);
  const zero = { cpuPeriod: 0n, cpuQuota: 0n, cpuShares: 0n, memoryLimitInBytes: 0n, oomScoreAdj: 0n, cpusetCpus: '', cpusetMems: '', hugepageLimits: [], unified: {}, memorySwapLimitInBytes: 0n };
  assert.deepEqual(convertResources(zero, f).resources, {});
  const bad: [Partial<typeof zero>, RegExp][] = [
    [{ cpuShares: -1n }, /cpu_shares/],
    [{ cpuShares: 1n << 30n }, /cpu_shares/],
    [{ cpuPeriod: 10n }, /cpu_period/],
    [{ cpuQuota: 5n }, /cpu_quota/],
    [{ memoryLimitInBytes: -1n }, /memory_limit/],
    [{ memoryLimitInBytes: 1024n }, /minimum/],
    [{ memoryLimitInBytes: 64n << 20n, memorySwapLimitInBytes: 1n << 20n }, /swap/],
    [{ oomScoreAdj: 1001n }, /oom_score_adj/],
    [{ cpusetCpus: '0-9' }, /CPU 9/],
    [{ cpusetCpus: 'a' }, /CPU list/],
    [{ hugepageLimits: [{ pageSize: '1GB', limit: 1n }] } as never, /hugepage size/],
    [{ unified: { 'memory.max': '1' } } as never, /cgroup v1/],
  ];
  for (const [r, re] of bad) throwsCode(() => convertResources({ ...zero, ...r }, f), 'InvalidArgument', re);
});

test('stop signal: config, then image STOPSIGNAL, then SIGTERM', () => {
  assert.equal(chooseStopSignal(Signal.SIGNAL_SIGINT, 'SIGUSR1'), 'SIGINT');
  assert.equal(chooseStopSignal(Signal.SIGNAL_RUNTIME_DEFAULT, 'USR1'), 'SIGUSR1');
  assert.equal(chooseStopSignal(Signal.SIGNAL_RUNTIME_DEFAULT, '9'), 'SIGKILL');
  assert.equal(chooseStopSignal(Signal.SIGNAL_RUNTIME_DEFAULT, undefined), 'SIGTERM');
  assert.equal(normalizeSignal('NOPE'), undefined);
  throwsCode(() => chooseStopSignal(Signal.SIGNAL_RUNTIME_DEFAULT, 'SIGNOPE'), 'InvalidArgument');
});

test('seccomp: choice from typed and legacy fields; default profile allow-list; localhost profile parsing', () => {
  const cfg = (sc: object) => ContainerConfig.fromPartial({ linux: { securityContext: sc } });
  assert.deepEqual(seccompChoice(cfg({})), { kind: 'unconfined' });
  assert.deepEqual(seccompChoice(cfg({ seccompProfilePath: 'runtime/default' })), { kind: 'runtime-default' });
  assert.deepEqual(seccompChoice(cfg({ seccompProfilePath: 'localhost//p.json' })), { kind: 'localhost', path: '/p.json' });
  assert.deepEqual(seccompChoice(cfg({ seccomp: { profileType: SecurityProfile_ProfileType.RuntimeDefault } })), { kind: 'runtime-default' });
  throwsCode(() => seccompChoice(cfg({ seccomp: { profileType: SecurityProfile_ProfileType.Localhost, localhostRef: 'rel.json' } })), 'InvalidArgument');
  throwsCode(() => seccompChoice(cfg({ seccompProfilePath: 'weird' })), 'InvalidArgument');

  const p = defaultSeccompProfile(DEFAULT_CAPABILITIES);
  assert.equal(p.defaultAction, 'SCMP_ACT_ERRNO');
  const allowed = new Set(p.syscalls!.filter((r) => r.action === 'SCMP_ACT_ALLOW' && !r.args).flatMap((r) => r.names));
  for (const s of ['read', 'write', 'execve', 'futex', 'openat', 'chroot']) assert.ok(allowed.has(s), s);
  for (const s of ['unshare', 'mount', 'setns', 'kexec_load', 'init_module', 'bpf', 'keyctl', 'reboot', 'clone3']) assert.ok(!allowed.has(s), s);
  assert.ok(p.syscalls!.some((r) => r.names.includes('clone') && r.args?.[0]?.op === 'SCMP_CMP_MASKED_EQ'));
  const admin = new Set(defaultSeccompProfile([...DEFAULT_CAPABILITIES, 'CAP_SYS_ADMIN']).syscalls!.flatMap((r) => (r.action === 'SCMP_ACT_ALLOW' && !r.args ? r.names : [])));
  assert.ok(admin.has('mount') && admin.has('unshare'));

  const parsed = parseSeccompProfile(JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ name: 'mkdir', action: 'SCMP_ACT_ERRNO' }] }), '/p');
  assert.deepEqual(parsed.syscalls, [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }]);
  assert.throws(() => parseSeccompProfile('{', '/p'), /not valid JSON/);
  assert.throws(() => parseSeccompProfile('{}', '/p'), /defaultAction/);
});

test('spec: process, namespaces, mounts, security and cgroup assembled from CRI + image + pod', () => {
  const { spec, stopSignal } = buildSpec(
    input({
      command: ['/app'],
      args: ['--x'],
      workingDir: '/work',
      tty: true,
      envs: [{ key: 'A', value: Buffer.from('cri') }],
      mounts: [],
      linux: { securityContext: { noNewPrivs: true, readonlyRootfs: true, seccomp: { profileType: SecurityProfile_ProfileType.RuntimeDefault } } },
      annotations: { a: 'b' },
    }),
  );
  assert.deepEqual(spec.process.args, ['/app', '--x']);
  assert.equal(spec.process.cwd, '/work');
  assert.equal(spec.process.terminal, true);
  assert.ok(spec.process.env.includes('A=cri') && spec.process.env.includes('HOSTNAME=podhost'));
  assert.equal(spec.process.noNewPrivileges, true);
  assert.equal(spec.root.readonly, true);
  assert.equal(spec.linux.cgroupsPath, '/kubepods/pod1/abc');
  assert.deepEqual(spec.linux.namespaces, [
    { type: 'mount' },
    { type: 'network', path: '/run/netns/n' },
    { type: 'ipc', path: '/run/ipc/i' },
    { type: 'uts', path: '/run/uts/u' },
    { type: 'pid' },
  ]);
  assert.equal(spec.hostname, undefined, 'the pod UTS namespace carries the hostname');
  assert.deepEqual(spec.linux.maskedPaths, [...DEFAULT_MASKED_PATHS]);
  assert.ok(spec.linux.seccomp);
  assert.equal(spec.annotations!['a'], 'b');
  const dest = spec.mounts.map((m) => m.destination);
  for (const d of ['/proc', '/dev', '/dev/pts', '/sys', '/dev/shm', '/etc/hostname', '/etc/hosts', '/etc/resolv.conf']) assert.ok(dest.includes(d), d);
  assert.equal(spec.mounts.find((m) => m.destination === '/etc/hosts')!.options!.includes('ro'), true, 'readonly rootfs makes pod files ro');
  assert.equal(stopSignal, 'SIGTERM');
});

test('spec: namespace modes NODE/POD/CONTAINER/TARGET', () => {
  const ns = (o: object, extra: Partial<SpecInput> = {}) =>
    buildSpec(input({ linux: { securityContext: { namespaceOptions: o } } }, extra)).spec.linux.namespaces.map((n) => `${n.type}${n.path ? `=${n.path}` : ''}`);
  assert.deepEqual(ns({ network: NamespaceMode.NODE, ipc: NamespaceMode.NODE, pid: NamespaceMode.NODE }), ['mount', 'uts=/run/uts/u']);
  assert.ok(ns({ pid: NamespaceMode.POD }, { sandbox: sandbox({ pidnsPath: '/run/pid/p' }) }).includes('pid=/run/pid/p'));
  assert.ok(ns({ pid: NamespaceMode.TARGET, targetId: 't' }, { targetPidnsPath: '/proc/5/ns/pid' }).includes('pid=/proc/5/ns/pid'));
  throwsCode(() => ns({ pid: NamespaceMode.TARGET, targetId: 't' }), 'InvalidArgument', /TARGET/);
});

test('spec: CRI mounts with propagation and read-only; privileged gets everything and no masks', () => {
  const { spec } = buildSpec(
    input({}, {
      mounts: [
        { containerPath: '/data', hostPath: '/srv/data', readonly: true, recursiveReadOnly: false, propagation: MountPropagation.PROPAGATION_HOST_TO_CONTAINER },
        { containerPath: '/etc/hosts', hostPath: '/srv/hosts', readonly: false, recursiveReadOnly: false, propagation: MountPropagation.PROPAGATION_PRIVATE },
      ],
    }),
  );
  const data = spec.mounts.find((m) => m.destination === '/data')!;
  assert.deepEqual(data.options, ['rbind', 'rslave', 'ro']);
  assert.equal(spec.linux.rootfsPropagation, 'rslave');
  assert.equal(spec.mounts.filter((m) => m.destination === '/etc/hosts').length, 1, 'the CRI mount replaces the default');
  assert.equal(spec.mounts.find((m) => m.destination === '/etc/hosts')!.source, '/srv/hosts');
  throwsCode(() => buildSpec(input({}, { mounts: [{ containerPath: 'rel', hostPath: '/x', readonly: false, recursiveReadOnly: false, propagation: 0 }] })), 'InvalidArgument');

  const privPod = sandbox({ config: PodSandboxConfig.fromPartial({ linux: { securityContext: { privileged: true } } }) });
  const priv = buildSpec(input({ linux: { securityContext: { privileged: true, seccomp: { profileType: SecurityProfile_ProfileType.RuntimeDefault } } } }, { sandbox: privPod })).spec;
  assert.deepEqual(priv.linux.maskedPaths, []);
  assert.deepEqual(priv.linux.readonlyPaths, []);
  assert.equal(priv.linux.seccomp, undefined);
  assert.equal(priv.process.capabilities.bounding.length, facts.bounding.size);
  throwsCode(() => buildSpec(input({ linux: { securityContext: { privileged: true } } })), 'InvalidArgument', /privileged pod/);
  throwsCode(() => buildSpec(input({ envs: [{ key: 'BIG', value: Buffer.alloc(2 << 20, 97) }] })), 'InvalidArgument', /limit/);
  throwsCode(() => buildSpec(input({ workingDir: 'relative' })), 'InvalidArgument', /working_dir/);
});

test('spec: recursive read-only needs readonly and private propagation', () => {
  const m = (readonly: boolean, propagation: MountPropagation) => [{ containerPath: '/d', hostPath: '/x', readonly, recursiveReadOnly: true, propagation }];
  assert.ok(buildSpec(input({}, { mounts: m(true, MountPropagation.PROPAGATION_PRIVATE) })).spec.mounts.find((x) => x.destination === '/d')!.options!.includes('rro'));
  throwsCode(() => buildSpec(input({}, { mounts: m(false, MountPropagation.PROPAGATION_PRIVATE) })), 'InvalidArgument', /recursive_read_only/);
  throwsCode(() => buildSpec(input({}, { mounts: m(true, MountPropagation.PROPAGATION_HOST_TO_CONTAINER) })), 'InvalidArgument', /recursive_read_only/);
  throwsCode(() => buildSpec(input({}, { mounts: m(true, MountPropagation.PROPAGATION_BIDIRECTIONAL) })), 'InvalidArgument', /recursive_read_only/);
});
