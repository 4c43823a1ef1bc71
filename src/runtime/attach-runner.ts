import { closeSync, openSync, writeSync, constants as fsc } from 'node:fs';
import { basename, dirname } from 'node:path';
import { SeqpacketSocket } from 'node-unix-socket';
import type { Logger } from 'pino';
import type { RemoteCommandIO, SessionResult } from '../core/remote-io.js';

// conmon's attach socket protocol: each packet conmon sends starts with the pipe it
// came from; what we send is the container's stdin, unprefixed. conmon reads at most
// CONN_SOCK_BUF_SIZE − 1 bytes per packet (a SEQPACKET message is never split), so
// stdin goes in small packets.
const PIPE_STDOUT = 2;
const PIPE_STDERR = 3;
const STDIN_PACKET = 8192;
/** Control fifo message: "<type> <height> <width>\n"; type 1 is a resize. */
const CTL_RESIZE = 1;
/**
 * conmon writes to attach clients with blocking writes: a client that stops reading
 * would stall the container's output for everyone. We always read, and drop a client
 * that lets this much pile up instead.
 */
const MAX_BUFFERED_OUTPUT = 8 << 20;
const MAX_STDIN_IN_FLIGHT = 64;
const SUN_PATH_MAX = 107;

/** A container's conmon files: the attach socket (SOCK_SEQPACKET) and the control fifo (resize). */
export interface AttachTarget {
  readonly id: string;
  readonly attachSocketPath: string;
  readonly ctlFifoPath: string;
}

/** Attaches the session to the container's stdio through conmon. */
export async function runAttach(
  log: Logger,
  target: AttachTarget,
  io: RemoteCommandIO,
): Promise<SessionResult> {
  const sock = new SeqpacketSocket();
  let dirFd: number | undefined;
  let path = target.attachSocketPath;
  if (Buffer.byteLength(path) > SUN_PATH_MAX) {
    // A socket path longer than sun_path is reached through its directory's fd.
    dirFd = openSync(dirname(path), fsc.O_RDONLY | fsc.O_DIRECTORY);
    path = `/proc/self/fd/${dirFd}/${basename(path)}`;
  }
  try {
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      try {
        sock.connect(path, () => {
          sock.off('error', reject);
          resolve();
        });
      } catch (err) {
        reject(err as Error);
      }
    });
  } catch (err) {
    return { error: `cannot attach to container ${target.id}: ${(err as Error).message}` };
  } finally {
    if (dirFd !== undefined) closeSync(dirFd);
  }

  return new Promise<SessionResult>((resolve) => {
    let done = false;
    const end = (r: SessionResult) => {
      if (done) return;
      done = true;
      io.signal.removeEventListener('abort', onAbort);
      io.stdin?.unpipe();
      io.stdin?.pause();
      try {
        sock.destroy();
      } catch {
        // already closed
      }
      resolve(r);
    };
    // Detaching: the client leaves, the container keeps running.
    const onAbort = () => end({ ok: true });
    io.signal.addEventListener('abort', onAbort, { once: true });
    // Gone while we were connecting: a listener added after the abort never fires,
    // and the socket would stay open on conmon until the container exits.
    if (io.signal.aborted) {
      end({ ok: true });
      return;
    }

    sock.on('data', (pkt: Buffer) => {
      if (pkt.length < 1) return;
      const out = pkt[0] === PIPE_STDERR && !io.tty ? io.stderr : pkt[0] === PIPE_STDOUT || pkt[0] === PIPE_STDERR ? io.stdout : undefined;
      if (!out) return;
      out.write(pkt.subarray(1));
      if (out.writableLength > MAX_BUFFERED_OUTPUT) {
        log.warn({ container: target.id }, 'attach client is not reading; dropping it');
        end({ error: 'attach client too slow: output buffer exceeded' });
      }
    });
    sock.on('end', () => end({ ok: true }));
    sock.on('close', () => end({ ok: true }));
    sock.on('error', (err: Error) => end({ error: `attach socket: ${err.message}` }));

    if (io.stdin) {
      let inFlight = 0;
      io.stdin.on('data', (chunk: Buffer) => {
        for (let off = 0; off < chunk.length; off += STDIN_PACKET) {
          inFlight++;
          sock.write(chunk.subarray(off, off + STDIN_PACKET), undefined, undefined, () => {
            inFlight--;
            if (inFlight < MAX_STDIN_IN_FLIGHT / 2) io.stdin!.resume();
          });
        }
        if (inFlight >= MAX_STDIN_IN_FLIGHT) io.stdin!.pause();
      });
      // The client closed stdin: half-close, and conmon closes the container's stdin
      // (unless the container keeps it open for later attaches).
      io.stdin.on('end', () => {
        if (!done) sock.end();
      });
    }
    if (io.tty) {
      io.onResize((s) => {
        try {
          // O_NONBLOCK: never hang on a fifo whose reader (conmon) is gone.
          const fd = openSync(target.ctlFifoPath, fsc.O_WRONLY | fsc.O_NONBLOCK);
          try {
            writeSync(fd, `${CTL_RESIZE} ${s.height} ${s.width}\n`);
          } finally {
            closeSync(fd);
          }
        } catch (err) {
          log.debug({ container: target.id, err }, 'resize through the control fifo failed');
        }
      });
    }
  });
}
