import { join } from 'node:path';
import type { TestContext } from 'node:test';
import pino from 'pino';
import { defaultConfig, type Config } from '../../src/config/schema.js';
import { backgroundContext, type OpContext } from '../../src/core/context.js';
import { CreateContainerRequest, PodSandboxConfig, PodSandboxState, type DeepPartial } from '../../src/gen/runtime/v1/api.js';
import { makeContainersDeps } from '../../src/services/containers/area.js';
import type { ContainersDeps } from '../../src/services/containers/containers-deps.js';
import { makeCreateContainer } from '../../src/services/containers/create-container.js';
import { EventBus } from '../../src/services/events/event-bus.js';
import type { ImagesArea, LocalImage } from '../../src/services/images/api.js';
import type { PodsArea, SandboxView } from '../../src/services/pods/api.js';
import { removeDir, tempDir } from './daemon.js';
import { FakeContainerHost } from './fake-hosts.js';

// The containers area's use cases over a FakeContainerHost, with fake images and pods
// areas and the daemon's own wiring (makeContainersDeps): a real record store, exit
// watcher and mutex in a temp dir.

export const POD_ID = 'b'.repeat(64);
export const IMAGE: LocalImage = {
  id: `sha256:${'c'.repeat(64)}`,
  repoTags: ['busybox:1'],
  repoDigests: [],
  layerDirs: ['/layers/one'],
  config: { Cmd: ['sh'] },
  sizeBytes: 1,
};

/** Logs retain/release on the host's log (so one log tells the whole story); fails like a host call. */
export function fakeImages(host: FakeContainerHost): ImagesArea & { held: Set<string> } {
  const held = new Set<string>();
  return {
    handlers: {},
    recover: async () => {},
    close: async () => {},
    held,
    lookup: (ref) => (ref === 'busybox:1' || ref === IMAGE.id ? IMAGE : undefined),
    pullWatched: async () => {
      throw new Error('the containers tests pull nothing');
    },
    retain: (_id, holder) => {
      host.record(`retain ${holder}`);
      held.add(holder);
    },
    release: (_id, holder) => {
      host.record(`release ${holder}`);
      held.delete(holder);
    },
  };
}

export function fakePods(dir: string): PodsArea & { pod: SandboxView } {
  const pod: SandboxView = {
    id: POD_ID,
    state: 'ready',
    config: PodSandboxConfig.fromPartial({ metadata: { name: 'p', namespace: 'n', uid: 'u' } }),
    runtimeHandler: '',
    netnsPath: undefined,
    ipcnsPath: undefined,
    utsnsPath: undefined,
    pidnsPath: undefined,
    hostname: 'p',
    hostsPath: join(dir, 'pod', 'hosts'),
    resolvConfPath: join(dir, 'pod', 'resolv.conf'),
    shmPath: undefined,
    cgroupParent: '/cricket/pod',
    logDirectory: join(dir, 'logs'),
    ips: [],
    gvisorSandboxId: undefined,
  };
  return {
    handlers: {},
    recover: async () => {},
    close: async () => {},
    pod,
    get: (id) => (POD_ID.startsWith(id) && id !== '' ? pod : undefined),
    status: (id) => (id === POD_ID ? { id: POD_ID, metadata: pod.config.metadata, state: PodSandboxState.SANDBOX_READY } : undefined),
    attachContainers: () => {},
    checkSandbox: async () => {},
  };
}

export interface ContainersUnit {
  dir: string;
  config: Config;
  host: FakeContainerHost;
  images: ReturnType<typeof fakeImages>;
  pods: ReturnType<typeof fakePods>;
  events: EventBus;
  deps: ContainersDeps;
  /** Deps as a restarted daemon builds them: a fresh store and watcher over the same dirs and host. */
  restart(): ContainersDeps;
}

/** A temp dir (removed after the test) with root/ and run/ as the daemon's roots. */
export function containersUnit(t: TestContext, failAt?: string): ContainersUnit {
  const dir = tempDir('cricket-ctr-unit-');
  const base = defaultConfig();
  const config: Config = { ...base, daemon: { ...base.daemon, root: join(dir, 'root'), run_root: join(dir, 'run'), recovery_item_timeout_seconds: 5 } };
  const host = new FakeContainerHost(dir, failAt);
  const images = fakeImages(host);
  const pods = fakePods(dir);
  const events = new EventBus();
  const log = pino({ level: 'silent' });
  const all: ContainersDeps[] = [];
  const build = () => {
    const d = makeContainersDeps({ config, log, events }, { images, pods }, host);
    all.push(d);
    return d;
  };
  t.after(async () => {
    for (const d of all) d.exits.close();
    await removeDir(dir);
  });
  return { dir, config, host, images, pods, events, deps: build(), restart: build };
}

export const ctx = (): OpContext => backgroundContext(pino({ level: 'silent' }), 't');

export const createReq = (over: DeepPartial<CreateContainerRequest['config']> = {}) =>
  CreateContainerRequest.fromPartial({
    podSandboxId: POD_ID,
    config: { metadata: { name: 'c', attempt: 0 }, image: { image: 'busybox:1' }, logPath: 'c/0.log', ...over },
  });

/**
 * What containers left on the host: the fake's leftovers but the daemon's own attach
 * dir and the pod's log directory (kubelet's; CreateContainer makes the container's
 * directory in it and keeps it, as a retry writes there again).
 */
export const leftovers = (u: ContainersUnit): string[] =>
  u.host.leftovers().filter((l) => !l.startsWith('dir logs/') && l !== 'dir run/containers/attach');

/** CreateContainer over the unit's deps; the new id. */
export async function create(u: ContainersUnit, over: DeepPartial<CreateContainerRequest['config']> = {}): Promise<string> {
  const res = await makeCreateContainer(u.deps)(ctx(), createReq(over));
  return res.containerId!;
}
