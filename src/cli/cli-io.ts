import type { Command } from 'commander';
import { Session, type GlobalOptions } from './session.js';

/**
 * What a command touches outside itself: the session (made from the global options
 * on first use), its output streams and the terminal's width. Passed to every
 * command's builder, so a command never reaches for process.* itself.
 */
export interface CliIo {
  session(cmd: Command): Session;
  out(text: string): void;
  err(text: string): void;
  /** Columns of the terminal stdout is, or undefined when it is not one. */
  width(): number | undefined;
  readonly stdout: NodeJS.WriteStream;
  readonly stderr: NodeJS.WriteStream;
  readonly stdin: NodeJS.ReadStream;
  readonly env: NodeJS.ProcessEnv;
}

export function processIo(): CliIo & { closeAll(): void; endpoint(): string } {
  let session: Session | undefined;
  return {
    session(cmd) {
      return (session ??= new Session(cmd.optsWithGlobals() as GlobalOptions, process.env));
    },
    out: (t) => void process.stdout.write(t),
    err: (t) => void process.stderr.write(t),
    width: () => (process.stdout.isTTY ? process.stdout.columns : undefined),
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env: process.env,
    closeAll: () => session?.close(),
    endpoint: () => session?.endpoint ?? '',
  };
}
