import { DgramSocket } from 'node-unix-socket';

/**
 * The service manager's readiness protocol (sd_notify(3)): datagrams such as
 * "READY=1" to the unix socket named by NOTIFY_SOCKET. Only what cricketd needs:
 * READY, STOPPING, RELOADING (with MONOTONIC_USEC, as Type=notify-reload wants) and
 * the WATCHDOG keep-alive. A failed send is reported to the caller, never thrown at it:
 * a daemon must not die because its supervisor went away.
 */
export class SdNotifier {
  readonly #path: string;
  readonly #socket: DgramSocket;
  #watchdog: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(socketPath: string) {
    if (socketPath.startsWith('@')) {
      throw new Error(`NOTIFY_SOCKET ${socketPath} is in the abstract namespace, which cricketd cannot send to; give a socket path`);
    }
    if (!socketPath.startsWith('/')) throw new Error(`NOTIFY_SOCKET ${socketPath} is not an absolute socket path`);
    this.#path = socketPath;
    // Made only once the path is good: an open socket keeps the process alive.
    this.#socket = new DgramSocket();
    this.#socket.on('error', () => {});
  }

  /** Sends one message (lines of KEY=VALUE); resolves to the error, if any. */
  send(message: string): Promise<Error | undefined> {
    if (this.#closed) return Promise.resolve(new Error('notifier closed'));
    const buf = Buffer.from(message);
    return new Promise((resolve) => {
      try {
        this.#socket.sendTo(buf, 0, buf.length, this.#path, (err) => resolve(err ?? undefined));
      } catch (err) {
        resolve(err as Error);
      }
    });
  }

  ready(status?: string): Promise<Error | undefined> {
    return this.send(`READY=1${status ? `\nSTATUS=${status}` : ''}`);
  }

  reloading(): Promise<Error | undefined> {
    const usec = process.hrtime.bigint() / 1000n;
    return this.send(`RELOADING=1\nMONOTONIC_USEC=${usec}`);
  }

  stopping(): Promise<Error | undefined> {
    return this.send('STOPPING=1');
  }

  /** WATCHDOG=1 every half of the interval the manager gave (WATCHDOG_USEC), as sd_watchdog_enabled(3) advises. */
  startWatchdog(intervalUsec: number, onError: (err: Error) => void): void {
    if (this.#watchdog || !(intervalUsec > 0)) return;
    const ms = Math.max(1, Math.floor(intervalUsec / 2000));
    const beat = () => void this.send('WATCHDOG=1').then((err) => err && onError(err));
    beat();
    this.#watchdog = setInterval(beat, ms);
    this.#watchdog.unref();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#watchdog) clearInterval(this.#watchdog);
    this.#socket.close();
  }
}
