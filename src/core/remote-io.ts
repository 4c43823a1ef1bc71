// The contract between a streaming transport (streams/: SPDY or WebSocket) and what
// runs the session (runtime/: runc exec, conmon attach; host/: the port dialer), so
// neither side imports the other.
import type { Duplex, Readable, Writable } from 'node:stream';

export interface TerminalSize {
  width: number;
  height: number;
}

/** How an exec or attach session ended, for the error stream. */
export type SessionResult = { exitCode: number } | { error: string } | { ok: true };

/**
 * One exec/attach session as the runners see it, whatever the transport (SPDY streams
 * or WebSocket channels). Streams the client did not ask for are undefined.
 */
export interface RemoteCommandIO {
  readonly tty: boolean;
  /** What the client types; ends when the client closes stdin. */
  readonly stdin: Readable | undefined;
  readonly stdout: Writable | undefined;
  readonly stderr: Writable | undefined;
  /** Aborted when the client goes away: end whatever runs for it. */
  readonly signal: AbortSignal;
  /** Terminal sizes as the client sends them (the first one soon after connecting). */
  onResize(cb: (size: TerminalSize) => void): void;
  /** Ends stdout/stderr, writes the status, closes the connection. */
  finish(result: SessionResult): Promise<void>;
}

/** One forwarded connection of a port-forward session. */
export interface ForwardedConnection {
  readonly port: number;
  /** Bytes both ways; ends (FIN) when either side is done writing. */
  readonly data: Duplex;
  /** Reports a failure for this connection (e.g. nothing listens on the port). */
  fail(message: string): void;
  readonly signal: AbortSignal;
}
