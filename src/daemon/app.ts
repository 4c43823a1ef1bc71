import { setMaxListeners } from 'node:events';
import { mkdirSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { LiveConfig } from '../config/live-config.js';
import { deepFreeze } from '../config/load.js';
import { planReload } from '../config/reload.js';
import type { SdNotifier } from '../host/sd-notify.js';
import { failedPrecondition } from '../core/errors.js';
import { VERSION } from '../core/version.js';
import { CriServer } from '../server/grpc-server.js';
import { PidLock } from '../server/pid-lock.js';
import { discardsSettled } from '../host/discard.js';
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
import { NO_METRICS, secondsSince, type Metrics } from '../core/metrics.js';
import type { MetricsServer } from '../metrics/metrics-server.js';
import { sysHelper } from '../host/sys-helper.js';

export interface RunningDaemon {
  /** Drain in-flight RPCs (up to the grace period) and release the socket. Containers keep running. */
  stop(): Promise<void>;
  /** Second signal: drop everything now. */
  forceStop(): void;
  /**
   * SIGHUP: load the config files again and apply what can change live. A file that
   * does not validate changes nothing. Calls while one runs are folded into one more
   * run after it, so a storm of signals ends on the files as they are last.
   */
  reload(): Promise<void>;
}

export interface StartOptions {
  /** Loads and validates the config files and flags again (for reload()); throws naming file, key and reason. */
  load?: () => Readonly<Config>;
  /** The service manager's notify socket, when NOTIFY_SOCKET is set. */
  notifier?: SdNotifier;
  /** WATCHDOG_USEC, when the manager asks for keep-alives. */
  watchdogUsec?: number;
}

/**
 * Builds the daemon from a validated config: takes the run-root lock, prepares the
 * state dirs, recovers state, then opens the socket for business.
 */
export async function startDaemon(config: Readonly<Config>, log: Logger, opts: StartOptions = {}): Promise<RunningDaemon> {
  const { notifier } = opts;
  const live = new LiveConfig(config);
  // Refuse before touching anything if another daemon answers on our socket.
  await assertSocketFree(config.daemon.listen);
  const lock = new PidLock(config.daemon.run_root);
  lock.acquire();
  const shutdown = new AbortController();
  // Every RPC in flight listens on it (and leaves when it ends): more than 10 is a busy node, not a leak.
  setMaxListeners(0, shutdown.signal);
  let server: CriServer | undefined;
  let metricsServer: MetricsServer | undefined;
  // prom-client and the OpenTelemetry SDK are loaded only when switched on: imported at
  // start they cost every daemon several MB it never uses (both are off by default).
  const tracing =
    config.tracing.endpoint === ''
      ? undefined
      : new (await import('../tracing/otel-tracing.js')).OtelTracing({ endpoint: config.tracing.endpoint, serviceName: 'cricketd', serviceVersion: VERSION });
  let areas: Area[] = [];
  let reconciler: Reconciler | undefined;
  try {
    let metrics: Metrics = NO_METRICS;
    if (config.metrics.address !== '') {
      // Bound first: a taken address stops the start before any state is touched.
      const [{ PrometheusMetrics }, { MetricsServer }] = await Promise.all([import('../metrics/prometheus-metrics.js'), import('../metrics/metrics-server.js')]);
      const prom = new PrometheusMetrics();
      metricsServer = new MetricsServer(prom);
      const at = await metricsServer.listen(config.metrics.address);
      metrics = prom;
      log.info({ address: at }, 'serving metrics at /metrics');
    }
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
      // What areas read at call time follows a reload; what they copied at start stays.
      config: live.view,
      log,
      cni: new CniConfigSource(config.network.cni_conf_dir),
      events: new EventBus(),
      settings,
      buildInfo: { version: VERSION, node: process.version, platform: `${process.platform}/${process.arch}` },
      metrics,
      configInfo: () => live.info(),
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
      { log, readiness, shutdown: shutdown.signal, metrics, tracing },
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
    const recoveryStart = process.hrtime.bigint();
    for (const area of areas) await area.recover(recovery);
    metrics.recovered(secondsSince(recoveryStart));
    readiness.markServing();
    await play.start(recovery);
    log.info('cricketd ready');
    if (notifier) {
      const err = await notifier.ready('serving the CRI');
      if (err) log.warn({ err: err.message }, 'cannot tell the service manager we are ready');
      if (opts.watchdogUsec) notifier.startWatchdog(opts.watchdogUsec, (e) => log.warn({ err: e.message }, 'watchdog notification failed'));
    }
    const srv = server;
    const metricsSrv = metricsServer;
    const reloadOnce = async () => {
      await notifier?.reloading();
      try {
        let loaded: Readonly<Config>;
        try {
          if (!opts.load) throw new Error('this daemon was started without its config files');
          loaded = opts.load();
        } catch (err) {
          log.error({ err: (err as Error).message }, 'config reload refused; the running config is kept');
          return;
        }
        const plan = planReload(live.current, loaded);
        live.replace(deepFreeze(plan.config));
        log.level = plan.config.daemon.log_level;
        if (plan.needsRestart.length > 0) {
          log.warn({ keys: plan.needsRestart }, 'config keys that cannot change while cricketd runs keep their running values; restart to apply them');
        }
        if (plan.keptHandlers.length > 0) {
          log.warn({ handlers: plan.keptHandlers }, 'runtime handlers changed or removed in the files keep their running definition until a restart (pods may use them); new handlers are usable now');
        }
        const ctx = backgroundContext(log, 'reload', shutdown.signal);
        for (const area of areas) {
          await area.reload?.(ctx).catch((err: unknown) => log.error({ err: (err as Error).message }, 'reload of a config file failed; the last good one stays in use'));
        }
        log.info({ applied: plan.applied, ...live.info() }, 'config reloaded');
      } finally {
        await notifier?.ready();
      }
    };
    let reloading: Promise<void> | undefined;
    let again = false;
    return {
      reload() {
        // A stopping daemon reloads nothing (and must not tell the manager it is ready again).
        if (shutdown.signal.aborted) return Promise.resolve();
        if (reloading) {
          again = true;
          return reloading;
        }
        reloading = (async () => {
          do {
            again = false;
            await reloadOnce();
          } while (again && !shutdown.signal.aborted);
        })().finally(() => {
          reloading = undefined;
        });
        return reloading;
      },
      async stop() {
        await notifier?.stopping();
        readiness.markDraining();
        reconciler?.close();
        shutdown.abort();
        await srv.stop(config.daemon.shutdown_grace_seconds * 1000);
        for (const area of [...areas].reverse()) await area.close().catch((err: unknown) => log.warn({ err }, 'area close failed'));
        sysHelper.stop();
        // Removed containers' trees still being deleted in the background (host/discard.ts).
        await discardsSettled();
        await metricsSrv?.close();
        // What is still buffered goes out before the process ends.
        await tracing?.shutdown().catch((err: unknown) => log.warn({ err: (err as Error).message }, 'trace export at shutdown failed'));
        notifier?.close();
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
    await metricsServer?.close();
    lock.release();
    throw err;
  }
}
