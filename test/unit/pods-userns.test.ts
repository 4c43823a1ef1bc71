import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defaultConfig } from '../../src/config/schema.js';
import { CricketError } from '../../src/core/errors.js';
import { ContainerConfig, NamespaceMode, PodSandboxConfig, RunPodSandboxRequest } from '../../src/gen/runtime/v1/api.js';
import { buildSpec } from '../../src/oci/spec.js';
import { testFacts } from '../helpers/host-facts.js';
import { planPod } from '../../src/services/pods/validate.js';
import { join } from 'node:path';
import pino from 'pino';
import { backgroundContext } from '../../src/core/context.js';
import { KeyedMutex } from '../../src/core/keyed-mutex.js';
import { EventBus } from '../../src/services/events/event-bus.js';
import type { PodsDeps } from '../../src/services/pods/pods-deps.js';
import { recoverSandboxes } from '../../src/services/pods/recover.js';
import { makeRemovePodSandbox } from '../../src/services/pods/remove-pod-sandbox.js';
import { makeRunPodSandbox } from '../../src/services/pods/run-pod-sandbox.js';
import { SandboxStore } from '../../src/services/pods/sandbox-store.js';
import { removeDir, tempDir } from '../helpers/daemon.js';
import { fakePodHost } from '../helpers/fake-hosts.js';

// hostUsers: false as kubelet sends it and critest's six UserNamespaces specs check it:
// which userns_options plan a pod, which are refused and with which code, and the OCI
// spec a container of such a pod gets (the user namespace joined by path, with mappings).

const config = defaultConfig();
config.runtime.handlers['runsc'] = { ...config.runtime.handlers['runc']!, path: '/usr/bin/runsc', runtime_type: 'sandbox' };
config.runtime.handlers['off'] = { ...config.runtime.handlers['runc']!, user_namespaces: false };
const M = { containerId: 0, hostId: 1000, length: 100000 };

const req = (userns: unknown, over: { handler?: string; network?: NamespaceMode; ipc?: NamespaceMode; pid?: NamespaceMode } = {}) =>
  RunPodSandboxRequest.fromPartial({
    runtimeHandler: over.handler ?? 'runc',
    config: {
      metadata: { name: 'p', namespace: 'n', uid: 'u', attempt: 0 },
      linux: { securityContext: { namespaceOptions: { network: over.network ?? NamespaceMode.POD, ipc: over.ipc ?? NamespaceMode.POD, pid: over.pid ?? NamespaceMode.CONTAINER, usernsOptions: userns as never } } },
    },
  });
const fails = (r: RunPodSandboxRequest, code: string, re: RegExp) =>
  assert.throws(() => planPod(r, config, 'node'), (e: unknown) => e instanceof CricketError && e.code === code && re.test(e.message), `${code} ${re}`);

test('POD mode plans a user namespace with kubelet\'s one uid and one gid range; NODE and none are the node\'s', () => {
  const p = planPod(req({ mode: NamespaceMode.POD, uids: [M], gids: [{ ...M, hostId: 2000 }] }), config, 'node');
  assert.deepEqual(p.userns, { uidMappings: [M], gidMappings: [{ ...M, hostId: 2000 }] });
  assert.equal(planPod(req({ mode: NamespaceMode.NODE }), config, 'node').userns, undefined);
  assert.equal(planPod(req(undefined), config, 'node').userns, undefined);
  // NODE ignores mappings (kubelet sends none) and works with host namespaces as before.
  assert.equal(planPod(req({ mode: NamespaceMode.NODE }, { network: NamespaceMode.NODE }), config, 'node').userns, undefined);
});

test('CONTAINER and TARGET modes, a number of mappings other than one, and a mapping not starting at container id 0 are InvalidArgument naming why', () => {
  fails(req({ mode: NamespaceMode.CONTAINER }), 'InvalidArgument', /mode CONTAINER is not supported/);
  fails(req({ mode: NamespaceMode.TARGET }), 'InvalidArgument', /mode TARGET is not supported/);
  fails(req({ mode: NamespaceMode.POD, uids: [M, { ...M, hostId: 2000 }], gids: [M, { ...M, hostId: 2000 }] }), 'InvalidArgument', /exactly one uid mapping, got 2/);
  fails(req({ mode: NamespaceMode.POD, uids: [M], gids: [] }), 'InvalidArgument', /exactly one gid mapping, got 0/);
  fails(req({ mode: NamespaceMode.POD, uids: [], gids: [] }), 'InvalidArgument', /exactly one uid mapping, got 0/);
  fails(req({ mode: NamespaceMode.POD, uids: [{ ...M, containerId: 1 }], gids: [{ ...M, containerId: 1 }] }), 'InvalidArgument', /must map container id 0 .* starts at container id 1/);
  fails(req({ mode: NamespaceMode.POD, uids: [{ ...M, length: 0 }], gids: [M] }), 'InvalidArgument', /uid mapping has length 0/);
  fails(req({ mode: NamespaceMode.POD, uids: [{ ...M, hostId: 4294967000 }], gids: [M] }), 'InvalidArgument', /goes past the largest id/);
});

test('a user namespace cannot share the node\'s network, IPC or PID namespace', () => {
  const pod = { mode: NamespaceMode.POD, uids: [M], gids: [M] };
  fails(req(pod, { network: NamespaceMode.NODE }), 'InvalidArgument', /host network/);
  fails(req(pod, { ipc: NamespaceMode.NODE }), 'InvalidArgument', /host IPC/);
  fails(req(pod, { pid: NamespaceMode.NODE }), 'InvalidArgument', /host PID/);
});

test('a handler that cannot is FailedPrecondition, after the request itself was checked', () => {
  const pod = { mode: NamespaceMode.POD, uids: [M], gids: [M] };
  fails(req(pod, { handler: 'runsc' }), 'FailedPrecondition', /gVisor sandbox\) cannot give a pod its own user namespace/);
  fails(req(pod, { handler: 'off' }), 'FailedPrecondition', /user_namespaces = false/);
  // A bad request is InvalidArgument on any handler (critest's specs do not depend on it).
  fails(req({ mode: NamespaceMode.CONTAINER }, { handler: 'runsc' }), 'InvalidArgument', /mode CONTAINER/);
  // NODE on a gVisor handler is the node's, as before.
  assert.equal(planPod(req({ mode: NamespaceMode.NODE }, { handler: 'runsc' }), config, 'node').userns, undefined);
});

const facts = testFacts({ bounding: new Set(['CAP_CHOWN', 'CAP_KILL']) });

test('a container of a user-namespaced pod joins its user namespace first, with the mappings runc 1.1.5 wants', () => {
  const sandbox = {
    id: 'p'.repeat(64),
    state: 'ready' as const,
    config: PodSandboxConfig.fromPartial({}),
    runtimeHandler: 'runc',
    netnsPath: '/run/p/ns/net',
    ipcnsPath: '/run/p/ns/ipc',
    utsnsPath: '/run/p/ns/uts',
    pidnsPath: undefined,
    userns: { path: '/run/p/ns/user', uidMappings: [M], gidMappings: [{ ...M, hostId: 2000 }] },
    hostname: 'p',
    hostsPath: '/run/p/hosts',
    resolvConfPath: '/run/p/resolv.conf',
    shmPath: '/run/p/shm',
    cgroupParent: '/cricket/p',
    logDirectory: '',
    ips: [],
  };
  const build = (sb: typeof sandbox | Omit<typeof sandbox, 'userns'>) =>
    buildSpec({
      config: ContainerConfig.fromPartial({ metadata: { name: 'c' }, image: { image: 'img' }, command: ['true'] }),
      image: {},
      sandbox: sb,
      user: { uid: 0, gid: 0, additionalGids: [], home: '/root', username: 'root' },
      rootfsPath: '/rootfs',
      cgroupsPath: '/cricket/p/c',
      hostnamePath: '/b/hostname',
      mounts: [],
      devices: [],
      targetPidnsPath: undefined,
      localhostSeccomp: undefined,
      facts,
    }).spec;
  const spec = build(sandbox);
  assert.deepEqual(spec.linux.namespaces[0], { type: 'user', path: '/run/p/ns/user' });
  assert.deepEqual(spec.linux.uidMappings, [{ containerID: 0, hostID: 1000, size: 100000 }]);
  assert.deepEqual(spec.linux.gidMappings, [{ containerID: 0, hostID: 2000, size: 100000 }]);
  assert.ok(spec.linux.namespaces.some((n) => n.type === 'network' && n.path === '/run/p/ns/net'));
  const { userns: _u, ...plain } = sandbox;
  const host = build(plain);
  assert.equal(host.linux.namespaces.some((n) => n.type === 'user'), false);
  assert.equal(host.linux.uidMappings, undefined);
});

test('over a fake host: the pod user namespace is pinned with the others, undone when a later step fails, unpinned at removal and re-found by recovery', async (t) => {
  const dir = tempDir('cricket-userns-rb-');
  t.after(() => removeDir(dir));
  const r = RunPodSandboxRequest.fromPartial({
    config: {
      metadata: { name: 'p', namespace: 'n', uid: 'u' },
      linux: { securityContext: { namespaceOptions: { pid: NamespaceMode.POD, usernsOptions: { mode: NamespaceMode.POD, uids: [M], gids: [M] } } } },
    },
  });
  const make = (log: string[], failAt?: string, store = new SandboxStore(join(dir, 'root'))) => {
    const { host, cni, state } = fakePodHost(log, failAt);
    const pins: unknown[] = [];
    const pinNamespaces: typeof host.pinNamespaces = async (o) => {
      pins.push(o.user);
      await host.pinNamespaces(o);
    };
    const inits: unknown[] = [];
    const startPodInit: typeof host.startPodInit = async (o) => {
      inits.push(o.usernsPath);
      return host.startPodInit(o);
    };
    const deps: PodsDeps = {
      config: { ...defaultConfig(), logs: { allowed_roots: [] } },
      log: pino({ level: 'silent' }),
      store,
      events: new EventBus(),
      cni,
      host: { ...host, pinNamespaces, startPodInit },
      mutex: new KeyedMutex(),
      containers: () => undefined,
      podsRunDir: join(dir, 'run'),
    };
    return { deps, state, pins, inits };
  };
  const ctx = () => backgroundContext(pino({ level: 'silent' }), 't');

  const failing: string[] = [];
  await assert.rejects(makeRunPodSandbox(make(failing, 'shm').deps)(ctx(), r), /shm failed on purpose/);
  assert.ok(failing.includes('undo pin user'), `the user namespace pin is undone: ${failing.join(', ')}`);

  const log: string[] = [];
  const { deps, state, pins, inits } = make(log);
  const podSandboxId = (await makeRunPodSandbox(deps)(ctx(), r)).podSandboxId!;
  const userPath = join(dir, 'run', podSandboxId, 'ns', 'user');
  assert.deepEqual(pins, [{ path: userPath, uidMappings: [M], gidMappings: [M] }]);
  assert.deepEqual(inits, [userPath], 'the pod init starts inside the user namespace');
  assert.deepEqual(deps.store.get(podSandboxId)!.view().userns, { path: userPath, uidMappings: [M], gidMappings: [M] });

  // A restart: the pod stays READY only while its user namespace is pinned.
  const again = { ...deps, store: new SandboxStore(join(dir, 'root')) };
  await recoverSandboxes(ctx(), again);
  assert.equal(again.store.get(podSandboxId)!.status.state, 'ready');
  state.pinned.delete(userPath);
  const third = { ...deps, store: new SandboxStore(join(dir, 'root')) };
  await recoverSandboxes(ctx(), third);
  assert.equal(third.store.get(podSandboxId)!.status.state, 'notready', 'a pod whose user namespace is gone is NOTREADY');

  log.length = 0;
  await makeRemovePodSandbox(third)(ctx(), { podSandboxId });
  assert.ok(log.includes('undo pin user'), `removal unpins the user namespace: ${log.join(', ')}`);
});
