import type { RemoteIo } from './ws-remote-command.js';

/**
 * The local side of a remote session: stdin (raw when it is a TTY and -t is asked,
 * so Ctrl-C and keys go to the remote process), the output streams, the terminal's
 * size and its resizes. restore() puts the terminal back however the session ended.
 */
export function localTerminal(o: { stdin: NodeJS.ReadStream; stdout: NodeJS.WriteStream; stderr: NodeJS.WriteStream; interactive: boolean; tty: boolean }): RemoteIo & { restore(): void } {
  const raw = o.interactive && o.tty && o.stdin.isTTY === true;
  if (raw) o.stdin.setRawMode(true);
  // stdin is not resumed here: the session's 'data' listener starts it once the
  // WebSocket is open, so nothing typed (or piped) before then is lost.
  const hasSize = o.tty && o.stdout.isTTY === true;
  return {
    stdin: o.interactive ? o.stdin : undefined,
    stdout: o.stdout,
    stderr: o.stderr,
    size: hasSize ? () => ({ width: o.stdout.columns, height: o.stdout.rows }) : undefined,
    onResize: hasSize
      ? (cb) => {
          o.stdout.on('resize', cb);
          return () => o.stdout.off('resize', cb);
        }
      : undefined,
    restore() {
      if (raw) o.stdin.setRawMode(false);
      if (o.interactive) o.stdin.pause();
    },
  };
}
