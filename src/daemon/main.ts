import { loadConfig, type LoadOptions } from '../config/load.js';
import { SdNotifier } from '../host/sd-notify.js';
import { CricketError } from '../core/errors.js';
import { VERSION } from '../core/version.js';
import { startDaemon } from './app.js';
import { DAEMON_USAGE, parseDaemonFlags } from './flags.js';
import { createLogger } from './logger.js';

// Entry point of cricketd: the only place (with cli/) that reads argv and env.
// Start-up failures print one line naming what and where, and exit non-zero.
process.title = 'cricketd';

function die(message: string, code = 1): never {
  process.stderr.write(`cricketd: ${message.replace(/\n/g, ' ')}\n`);
  process.exit(code);
}

async function main(): Promise<void> {
  let flags;
  try {
    flags = parseDaemonFlags(process.argv.slice(2));
  } catch (err) {
    die(`${(err as Error).message} (see cricketd --help)`, 2);
  }
  if (flags.help) {
    process.stdout.write(`${DAEMON_USAGE}\n`);
    return;
  }
  if (flags.version) {
    process.stdout.write(`cricketd ${VERSION}\n`);
    return;
  }
  const loadOpts: LoadOptions = {
    file: flags.configFile,
    dir: flags.configDir,
    fileRequired: flags.configFileGiven,
    overrides: flags.overrides,
  };
  let config;
  try {
    config = loadConfig(loadOpts);
  } catch (err) {
    die((err as Error).message, 2);
  }
  const log = createLogger(config.daemon.log_level, { human: process.stdout.isTTY === true });
  // SIGHUP's default is to end the process: until the daemon can reload, one is kept for later.
  let daemon: Awaited<ReturnType<typeof startDaemon>> | undefined;
  let hupWhileStarting = false;
  process.on('SIGHUP', () => {
    if (!daemon) {
      hupWhileStarting = true;
      return;
    }
    log.info({ signal: 'SIGHUP' }, 'reloading the config');
    void daemon.reload();
  });
  const notifier = notifierFromEnv(log);
  try {
    daemon = await startDaemon(config, log, { load: () => loadConfig(loadOpts), notifier, watchdogUsec: watchdogFromEnv() });
  } catch (err) {
    die(err instanceof CricketError ? err.message : `start-up failed: ${(err as Error).stack ?? String(err)}`);
  }
  if (hupWhileStarting) void daemon.reload();
  const running = daemon;
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals += 1;
    if (signals > 1) {
      log.warn({ signal: sig }, 'second signal: exiting now');
      running.forceStop();
      process.exit(1);
    }
    log.info({ signal: sig }, 'shutting down; containers keep running');
    running.stop().then(
      () => {
        log.info('cricketd stopped');
        log.flush();
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  // A dead client on a pipe must not kill the daemon.
  process.on('SIGPIPE', () => {});
}

/**
 * The service manager's notify socket (NOTIFY_SOCKET), taken out of the environment
 * so no child (conmon, runc, CNI plugins) mistakes itself for the service.
 */
function notifierFromEnv(log: ReturnType<typeof createLogger>): SdNotifier | undefined {
  const path = process.env['NOTIFY_SOCKET'];
  delete process.env['NOTIFY_SOCKET'];
  if (!path) return undefined;
  try {
    return new SdNotifier(path);
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'not notifying the service manager');
    return undefined;
  }
}

/**
 * WATCHDOG_USEC, when it is meant for this process: WATCHDOG_PID unset, ours, or our
 * parent's (the launcher runs node under catatonit, which is the service's main PID).
 */
function watchdogFromEnv(): number | undefined {
  const usec = Number(process.env['WATCHDOG_USEC'] ?? '');
  const pid = process.env['WATCHDOG_PID'];
  delete process.env['WATCHDOG_USEC'];
  delete process.env['WATCHDOG_PID'];
  if (!(usec > 0)) return undefined;
  if (pid !== undefined && pid !== '' && Number(pid) !== process.pid && Number(pid) !== process.ppid) return undefined;
  return usec;
}

void main();
