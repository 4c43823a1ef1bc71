import { pino, type Logger } from 'pino';

/**
 * Structured logs to stdout (the service manager collects them). Credentials never
 * reach a log line: request bodies are not logged, and these paths are redacted in
 * case an error object carries them.
 */
export function createLogger(level: string): Logger {
  // Synchronous writes: a line logged just before exit (start-up failure, shutdown)
  // must not be lost, and our volume is a few lines per RPC.
  return pino({
    level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: ['auth', '*.auth', '*.password', '*.identityToken', '*.registryToken', 'headers.authorization'],
      censor: '[redacted]',
    },
  }, pino.destination({ dest: 1, sync: true }));
}
