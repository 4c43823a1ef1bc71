import { createRequire } from 'node:module';
import { pino, type DestinationStream, type Logger } from 'pino';
import type PinoPretty from 'pino-pretty';

// pino-pretty (and what it pulls in) only for a terminal: a daemon under a service
// manager never loads it, which keeps a few MB off its memory.
const requireCjs = createRequire(import.meta.url);

/**
 * Structured logs to stdout (the service manager collects them). Credentials never
 * reach a log line: request bodies are not logged, and these paths are redacted in
 * case an error object carries them.
 */
export function createLogger(level: string, o: { human?: boolean } = {}): Logger {
  // Synchronous writes: a line logged just before exit (start-up failure, shutdown)
  // must not be lost, and our volume is a few lines per RPC. On a terminal (make run),
  // lines a person reads: time, level, message, then the fields; JSON otherwise.
  const dest: DestinationStream = o.human
    ? (requireCjs('pino-pretty') as typeof PinoPretty)({ sync: true, destination: 1, colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', singleLine: true })
    : pino.destination({ dest: 1, sync: true });
  return pino({
    level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: ['auth', '*.auth', '*.password', '*.identityToken', '*.registryToken', 'headers.authorization'],
      censor: '[redacted]',
    },
  }, dest);
}
