import { setMaxListeners } from 'node:events';
import { mkdirSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { failedPrecondition } from '../core/errors.js';
import { VERSION } from '../core/version.js';
import { CriServer } from '../server/grpc-server.js';
import { PidLock } from '../server/pid-lock.js';
import { assertSocketFree } from '../server/socket-guard.js';
import { Readiness } from '../server/readiness.js';
import type { Deps } from '../services/deps.js';
import { buildHandlers } from '../services/handlers.js';
import { buildCricketHandlers } from '../services/cricket/handlers.js';
import { criCaller } from '../services/play/cri-caller.js';
import { Reconciler } from '../services/play/reconciler.js';
import { CniConfigSource } from '../cni/cni-config-loader.js';
import { EventBus } from '../services/events/event-bus.js';
import { RuntimeSettings } from '../services/node/runtime-settings.js';
import type { Area } from '../services/areas.js';
import { createImages } from '../services/images/area.js';
import { createPods } from '../services/pods/area.js';
import { createContainers } from '../services/containers/area.js';
import { createStreaming } from '../services/streaming/area.js';
import { backgroundContext } from '../core/context.js';
import { sysHelper } from '../host/sys-helper.js';

export interface RunningDaemon {
  /** Drain in-flight RPCs (up to the grace period) and release the socket. Containers keep running. */
  stop(): Promise<void>;
  /** Second signal: drop everything now. */
  forceStop(): void;
}

/**
 * Builds the daemon from a validated config: takes the run-root lock, prepares the
 * state dirs, recovers state, then opens the socket for business.
 */
export async function startDaemon(config: Readonly<Config>, log: Logger): Promise<RunningDaemon> {
  // Refuse before touching anything if another daemon answers on our socket.
  await assertSocketFree(config.daemon.listen);
  const lock = new PidLock(config.daemon.run_root);
  lock.acquire();
  const shutdown = new AbortController();
  // Every RPC in flight listens on it (and leaves when it ends): more than 10 is a busy node, not a leak.
  setMaxListeners(0, shutdown.signal);
  let server: CriServer | undefined;
  let areas: Area[] = [];
  let reconciler: Reconciler | undefined;
  try {
    for (const dir of [config.daemon.root, config.daemon.run_root]) {
      try {
        mkdirSync(dir, { recursive: true, mode: 0o711 });
      } catch (err) {
        throw failedPrecondition(`cannot create state directory ${dir}: ${(err as Error).message}`);
      }
    }
    const readiness = new Readiness();
    const settings = new RuntimeSettings(config.daemon.root, config.runtime.pod_cidr);
    const deps: Deps = {
      config,
      log,
      cni: new CniConfigSource(config.network.cni_conf_dir),
      events: new EventBus(),
      settings,
      buildInfo: { version: VERSION, node: process.version, platform: `${process.platform}/${process.arch}` },
    };
    const images = await createImages(deps);
    const pods = await createPods(deps, { images });
    const containers = await createContainers(deps, { images, pods });
    pods.attachContainers(containers);
    const streaming = await createStreaming(deps, { containers, pods });
    areas = [images, pods, containers, streaming];
    const handlers = buildHandlers(deps, areas);
    // `cricket play`'s pods: driven through the same CRI handlers kubelet's calls reach.
    const play = new Reconciler({
      root: config.daemon.root,
      cri: criCaller(handlers, () => backgroundContext(log, 'play', shutdown.signal)),
      log,
      events: deps.events,
      manifestDir: config.pods.manifest_dir,
      dirLogDir: config.pods.log_dir,
    });
    reconciler = play;
    server = new CriServer(
      { socketPath: config.daemon.listen, maxMessageBytes: config.daemon.grpc_max_message_bytes },
      { log, readiness, shutdown: shutdown.signal },
      handlers,
      buildCricketHandlers({ images, play }),
    );
    // The socket opens before recovery so kubelet sees UNAVAILABLE (retry) rather
    // than "connection refused" while we reload state.
    await server.start();
    log.info({ socket: config.daemon.listen, version: VERSION }, 'cricketd listening; recovering state');
    await settings.load();
    // Areas recover in dependency order: images before the containers using them,
    // pods before their containers.
    const recovery = backgroundContext(log, 'recovery', shutdown.signal);
    for (const area of areas) await area.recover(recovery);
    readiness.markServing();
    await play.start(recovery);
    log.info('cricketd ready');
    const srv = server;
    return {
      async stop() {
        readiness.markDraining();
        reconciler?.close();
        shutdown.abort();
        await srv.stop(config.daemon.shutdown_grace_seconds * 1000);
        for (const area of [...areas].reverse()) await area.close().catch((err: unknown) => log.warn({ err }, 'area close failed'));
        sysHelper.stop();
        lock.release();
      },
      forceStop() {
        reconciler?.close();
        srv.forceStop();
        lock.release();
      },
    };
  } catch (err) {
    server?.forceStop();
    lock.release();
    throw err;
  }
}
