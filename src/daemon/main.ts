import { loadConfig } from '../config/load.js';
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
  let config;
  try {
    config = loadConfig({
      file: flags.configFile,
      dir: flags.configDir,
      fileRequired: flags.configFileGiven,
      overrides: flags.overrides,
    });
  } catch (err) {
    die((err as Error).message, 2);
  }
  const log = createLogger(config.daemon.log_level, { human: process.stdout.isTTY === true });
  let daemon;
  try {
    daemon = await startDaemon(config, log);
  } catch (err) {
    die(err instanceof CricketError ? err.message : `start-up failed: ${(err as Error).stack ?? String(err)}`);
  }
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals += 1;
    if (signals > 1) {
      log.warn({ signal: sig }, 'second signal: exiting now');
      daemon.forceStop();
      process.exit(1);
    }
    log.info({ signal: sig }, 'shutting down; containers keep running');
    daemon.stop().then(
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

void main();
