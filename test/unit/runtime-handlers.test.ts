import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigSchema } from '../../src/config/schema.js';
import { CricketError } from '../../src/core/errors.js';
import { ContainerConfig, MountPropagation, NamespaceMode, PodSandboxConfig, RunPodSandboxRequest, type DeepPartial } from '../../src/gen/runtime/v1/api.js';
import { allowedPodAnnotations } from '../../src/oci/annotations.js';
import { buildSpec } from '../../src/oci/spec.js';
import { testFacts } from '../helpers/host-facts.js';
import { resolveHandler, sandboxRuntimeArgs } from '../../src/runtime/handler.js';
import { checkSandboxContainer } from '../../src/services/containers/sandbox-limits.js';
import { buildInfraSpec } from '../../src/oci/infra-spec.js';
import { planPod } from '../../src/services/pods/validate.js';

const config = ConfigSchema.parse({
  daemon: { run_root: '/run/ck' },
  runtime: {
    handlers: {
      runc: {},
      runsc: { path: '/usr/bin/runsc', runtime_type: 'sandbox', runtime_args: ['--platform=systrap'], allowed_annotations: ['dev.gvisor.*', 'exact.key'] },
      tuned: { path: '/usr/bin/runsc', runtime_type: 'sandbox', runtime_args: ['--network=none', '--overlay2', 'none', '--oci-seccomp=false'] },
    },
  },
});

const isInvalid = (re: RegExp) => (e: unknown) => e instanceof CricketError && e.code === 'InvalidArgument' && re.test(e.message);

test('handler types: oci keeps its runtime_args as they are; sandbox (runsc) gets the flags this host needs unless set', () => {
  const runc = resolveHandler(config, '')!;
  assert.deepEqual([runc.name, runc.type, runc.path, runc.root, runc.args], ['runc', 'oci', '/usr/sbin/runc', '/run/ck/runc', []]);
  const runsc = resolveHandler(config, 'runsc')!;
  assert.equal(runsc.type, 'sandbox');
  assert.equal(runsc.root, '/run/ck/runsc');
  assert.deepEqual(runsc.args, ['--platform=systrap', '--network=host', '--overlay2=root:memory', '--oci-seccomp']);
  assert.deepEqual(resolveHandler(config, 'tuned')!.args, ['--network=none', '--overlay2', 'none', '--oci-seccomp=false'], 'a flag the handler sets itself is not added again');
  assert.deepEqual(sandboxRuntimeArgs(['-network=sandbox']), ['-network=sandbox', '--overlay2=root:memory', '--oci-seccomp']);
  assert.equal(resolveHandler(config, 'kata'), undefined);
  assert.throws(() => ConfigSchema.parse({ runtime: { handlers: { x: { runtime_type: 'vm' } } } }));
});

test('allowed_annotations: exact keys and "prefix*" only; none by default', () => {
  const pod = { 'dev.gvisor.spec.mount.x': 'a', 'exact.key': 'b', 'exact.key2': 'c', other: 'd' };
  assert.deepEqual(allowedPodAnnotations(pod, ['dev.gvisor.*', 'exact.key']), { 'dev.gvisor.spec.mount.x': 'a', 'exact.key': 'b' });
  assert.deepEqual(allowedPodAnnotations(pod, []), {});
});

const facts = testFacts({ bounding: new Set(['CAP_CHOWN', 'CAP_SYS_ADMIN']) });
function spec(cfg: DeepPartial<ContainerConfig>, handler?: Parameters<typeof buildSpec>[0]['handler'], podPrivileged = false) {
  return buildSpec({
    config: ContainerConfig.fromPartial({ metadata: { name: 'c' }, image: { image: 'i' }, ...cfg }),
    image: { Cmd: ['sh'] },
    sandbox: {
      config: PodSandboxConfig.fromPartial({ linux: { securityContext: { privileged: podPrivileged } } }),
      hostname: 'h',
      netnsPath: '/n',
      ipcnsPath: '/i',
      utsnsPath: '/u',
      pidnsPath: undefined,
      hostsPath: '/hosts',
      resolvConfPath: '/resolv',
      shmPath: '/shm',
    },
    user: { uid: 0, gid: 0, additionalGids: [], home: '/root', username: 'root' },
    rootfsPath: '/r',
    cgroupsPath: '/cg',
    hostnamePath: undefined,
    mounts: [],
    devices: [],
    targetPidnsPath: undefined,
    localhostSeccomp: undefined,
    facts,
    handler,
  }).spec;
}

test('the spec for a sandbox handler: pod annotations let in, join annotations dropped, privileged without host devices', () => {
  const ann = { 'io.kubernetes.cri.container-type': 'container', 'io.kubernetes.cri.sandbox-id': 'x', 'io.kubernetes.cri-o.ContainerType': 'container', mine: '1', 'dev.gvisor.a': 'container wins' };
  const h = { sandboxed: true, privilegedWithoutHostDevices: true, podAnnotations: { 'dev.gvisor.a': 'pod', 'dev.gvisor.b': 'pod' } };
  assert.deepEqual(spec({ annotations: ann }, h).annotations, { mine: '1', 'dev.gvisor.a': 'container wins', 'dev.gvisor.b': 'pod' });
  assert.deepEqual(spec({ annotations: ann }).annotations, ann, 'runc sees the annotations as given');

  const priv = { linux: { securityContext: { privileged: true } } };
  assert.deepEqual(spec(priv, undefined, true).linux.resources.devices, [{ allow: true, access: 'rwm' }]);
  assert.deepEqual(spec(priv, h, true).linux.resources.devices, [{ allow: false, access: 'rwm' }], 'no host device is opened');

  // gVisor takes the hostname from the spec, not from the pod's UTS namespace file.
  const plain = spec({});
  assert.equal(plain.hostname, undefined);
  assert.deepEqual(plain.linux.namespaces.find((n) => n.type === 'uts'), { type: 'uts', path: '/u' });
  const gv = spec({}, h);
  assert.equal(gv.hostname, 'h');
  assert.deepEqual(gv.linux.namespaces.find((n) => n.type === 'uts'), { type: 'uts' });
});

test("a container joining its pod's gVisor sandbox: the join annotations name the pod, PID POD shares the sandbox's, CONTAINER its own", () => {
  const h = { sandboxed: true, joinSandbox: 'p'.repeat(64), privilegedWithoutHostDevices: true, podAnnotations: {} };
  const forged = { 'io.kubernetes.cri.container-type': 'sandbox', 'io.kubernetes.cri.sandbox-id': 'x' };
  const pidOf = (s: ReturnType<typeof spec>) => s.linux.namespaces.filter((n) => n.type === 'pid');
  const pod = spec({ annotations: forged, linux: { securityContext: { namespaceOptions: { pid: NamespaceMode.POD } } } }, h);
  assert.deepEqual(pod.annotations, { 'io.kubernetes.cri.container-type': 'container', 'io.kubernetes.cri.sandbox-id': 'p'.repeat(64) }, "a client's copy never wins");
  assert.deepEqual(pidOf(pod), [], "no pid entry: runsc puts the container in the sandbox's PID namespace");
  const own = spec({ linux: { securityContext: { namespaceOptions: { pid: NamespaceMode.CONTAINER } } } }, h);
  assert.deepEqual(pidOf(own), [{ type: 'pid' }]);
});

test("a gVisor pod's infra container: catatonit -P on a read-only empty rootfs, in the pod's netns, named the sandbox", () => {
  const bounding = new Set(['CAP_CHOWN', 'CAP_NET_BIND_SERVICE', 'CAP_NET_ADMIN', 'CAP_SYS_ADMIN', 'CAP_KILL']);
  const base = { sandboxId: 'p'.repeat(64), rootfsPath: '/b/rootfs', catatonitPath: '/usr/bin/catatonit', hostname: 'web', netnsPath: '/n', cgroupsPath: '/cricket/p/p', privileged: false, bounding };
  const s = buildInfraSpec(base);
  assert.deepEqual(s.process.args, ['/catatonit', '-P']);
  assert.deepEqual(s.root, { path: '/b/rootfs', readonly: true });
  assert.deepEqual(s.annotations, { 'io.kubernetes.cri.container-type': 'sandbox', 'io.kubernetes.cri.sandbox-id': 'p'.repeat(64) });
  assert.deepEqual(s.linux.namespaces.find((n) => n.type === 'network'), { type: 'network', path: '/n' });
  assert.deepEqual(s.mounts.find((m) => m.destination === '/catatonit'), { destination: '/catatonit', type: 'bind', source: '/usr/bin/catatonit', options: ['rbind', 'ro'] });
  assert.ok(s.process.capabilities.bounding.includes('CAP_NET_BIND_SERVICE'), "a default container's set: the sandbox binds its containers' host sockets");
  assert.deepEqual([...s.process.capabilities.bounding].sort(), ['CAP_CHOWN', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'], 'the default set within the daemon bounding set');
  assert.deepEqual([...buildInfraSpec({ ...base, privileged: true }).process.capabilities.bounding].sort(), [...bounding].sort(), 'a privileged pod: all the daemon holds');
  assert.equal(s.hostname, 'web');
  assert.equal(s.linux.cgroupsPath, '/cricket/p/p');
  const hostNet = buildInfraSpec({ ...base, netnsPath: undefined });
  assert.equal(hostNet.linux.namespaces.find((n) => n.type === 'network'), undefined, 'a host-network pod: the host network');
});

test('what a gVisor container cannot have is refused before anything is made', () => {
  const c = (cfg: DeepPartial<ContainerConfig>, joins = true) => () => checkSandboxContainer(ContainerConfig.fromPartial(cfg), 'runsc', joins);
  const ns = (o: DeepPartial<NonNullable<NonNullable<ContainerConfig['linux']>['securityContext']>['namespaceOptions']>) => ({ linux: { securityContext: { namespaceOptions: o } } });
  assert.doesNotThrow(c({}));
  assert.doesNotThrow(c(ns({ pid: NamespaceMode.CONTAINER, network: NamespaceMode.POD, ipc: NamespaceMode.POD })));
  assert.throws(c(ns({ pid: NamespaceMode.NODE })), isInvalid(/host PID namespace/));
  assert.doesNotThrow(c(ns({ pid: NamespaceMode.POD })), "POD shares the pod sandbox's PID namespace");
  assert.doesNotThrow(c(ns({ pid: NamespaceMode.POD }), false), 'POD, the proto default, gives a container of an older pod its own PID namespace');
  assert.throws(c(ns({ pid: NamespaceMode.NODE }), false), isInvalid(/each container of this pod in its own gVisor sandbox: the host PID/));
  assert.throws(c(ns({ pid: NamespaceMode.TARGET, targetId: 'x' })), isInvalid(/TARGET/));
  assert.throws(c(ns({ pid: NamespaceMode.CONTAINER, ipc: NamespaceMode.NODE })), isInvalid(/host IPC/));
  assert.throws(c({ mounts: [{ containerPath: '/m', hostPath: '/tmp', propagation: MountPropagation.PROPAGATION_BIDIRECTIONAL }] }), isInvalid(/\/m .*rshared/));
  assert.doesNotThrow(c({ mounts: [{ containerPath: '/m', hostPath: '/tmp', propagation: MountPropagation.PROPAGATION_HOST_TO_CONTAINER }] }));
});

test('a sandbox pod: no pod init for a POD PID namespace; host PID and IPC refused', () => {
  const req = (handler: string, pid: NamespaceMode, ipc = NamespaceMode.POD) =>
    RunPodSandboxRequest.fromPartial({
      runtimeHandler: handler,
      config: { metadata: { name: 'p', namespace: 'n', uid: 'u' }, linux: { securityContext: { namespaceOptions: { pid, ipc } } } },
    });
  assert.equal(planPod(req('runc', NamespaceMode.POD), config, 'node').sharedPid, true);
  assert.equal(planPod(req('runsc', NamespaceMode.POD), config, 'node').sharedPid, false);
  assert.throws(() => planPod(req('runsc', NamespaceMode.NODE), config, 'node'), isInvalid(/"runsc".*host PID/));
  assert.throws(() => planPod(req('runsc', NamespaceMode.CONTAINER, NamespaceMode.NODE), config, 'node'), isInvalid(/host IPC/));
  assert.throws(() => planPod(req('kata', NamespaceMode.POD), config, 'node'), isInvalid(/"kata" is not configured; known handlers: runc, runsc, tuned/));
});
