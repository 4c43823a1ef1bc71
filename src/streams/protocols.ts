// Sub-protocol names of the Kubernetes streaming API (a fact of the protocol, as
// kubelet, client-go and crictl spell them) and their negotiation.

/** remotecommand over SPDY, best first (v4 adds the JSON status and exit codes). */
export const SPDY_EXEC_PROTOCOLS = ['v4.channel.k8s.io', 'v3.channel.k8s.io', 'v2.channel.k8s.io', 'channel.k8s.io'] as const;
export const SPDY_PORTFORWARD_PROTOCOLS = ['portforward.k8s.io'] as const;

/** remotecommand over WebSocket: v5 adds the close signal crictl needs for stdin EOF. */
export const WS_EXEC_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io', 'v4.base64.channel.k8s.io'] as const;
/** Port-forward over WebSocket: SPDY tunnelled in binary messages (client-go, crictl)... */
export const WS_SPDY_TUNNEL_PREFIX = 'SPDY/3.1+';
/** ...or the older channel protocol: per port a data and an error channel. */
export const WS_PORTFORWARD_CHANNEL_PROTOCOLS = ['v4.channel.k8s.io', 'v4.base64.channel.k8s.io', 'channel.k8s.io', 'base64.channel.k8s.io'] as const;

export const HEADER_PROTOCOL_VERSION = 'x-stream-protocol-version';
export const HEADER_ACCEPTED_VERSIONS = 'x-accepted-stream-protocol-versions';

/** Channel numbers (WebSocket) and stream types (SPDY) of remotecommand. */
export const Channel = { stdin: 0, stdout: 1, stderr: 2, error: 3, resize: 4 } as const;
export const CLOSE_SIGNAL = 255;

/**
 * Picks the first protocol the client lists that we serve (the client's order wins,
 * as in Kubernetes' httpstream.Handshake). Clients may send several header lines or
 * one comma-separated line.
 */
export function negotiate(clientOffers: readonly string[], ours: readonly string[]): string | undefined {
  const offers = clientOffers.flatMap((v) => v.split(',')).map((s) => s.trim()).filter(Boolean);
  return offers.find((p) => ours.includes(p));
}

/** The v4 status objects written on the error stream (a metav1.Status). */
export function successStatus(): string {
  return JSON.stringify({ metadata: {}, status: 'Success' });
}

export function exitCodeStatus(code: number): string {
  return JSON.stringify({
    metadata: {},
    status: 'Failure',
    message: `command terminated with non-zero exit code: error executing command, exit status ${code}`,
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: String(code) }] },
  });
}

export function failureStatus(message: string): string {
  return JSON.stringify({ metadata: {}, status: 'Failure', message, reason: 'InternalError', code: 500 });
}

/** Terminal size messages arrive as a stream of JSON objects {"Width":..,"Height":..}. */
export class ResizeParser {
  #buf = '';
  /** Returns the sizes completed by this chunk; throws on malformed input. */
  push(chunk: Buffer | string): { width: number; height: number }[] {
    this.#buf += chunk.toString();
    if (this.#buf.length > 4096) throw new Error('terminal size message is too long');
    const out: { width: number; height: number }[] = [];
    for (;;) {
      const start = this.#buf.indexOf('{');
      if (start < 0) {
        this.#buf = '';
        return out;
      }
      const end = this.#buf.indexOf('}', start);
      if (end < 0) {
        this.#buf = this.#buf.slice(start);
        return out;
      }
      const text = this.#buf.slice(start, end + 1);
      this.#buf = this.#buf.slice(end + 1);
      const o = JSON.parse(text) as { Width?: unknown; Height?: unknown };
      const w = Number(o.Width);
      const h = Number(o.Height);
      if (!Number.isInteger(w) || !Number.isInteger(h) || w < 0 || h < 0 || w > 65535 || h > 65535) {
        throw new Error(`bad terminal size ${text}`);
      }
      out.push({ width: w, height: h });
    }
  }
}

/**
 * Terminal sizes from a client, for one session: feeds the raw resize bytes through a
 * ResizeParser and hands each size to the runner. A runner that subscribes late
 * (attach connects before it listens) still gets the last size. A malformed message
 * is dropped: a bad resize must not end a session.
 */
export class ResizeFeed {
  readonly #parser = new ResizeParser();
  readonly #subscribers: ((s: { width: number; height: number }) => void)[] = [];
  #last: { width: number; height: number } | undefined;
  readonly #onBad: (err: unknown) => void;

  constructor(onBad: (err: unknown) => void) {
    this.#onBad = onBad;
  }

  push(chunk: Buffer | string): void {
    try {
      for (const s of this.#parser.push(chunk)) {
        this.#last = s;
        for (const cb of this.#subscribers) cb(s);
      }
    } catch (err) {
      this.#onBad(err);
    }
  }

  subscribe(cb: (s: { width: number; height: number }) => void): void {
    this.#subscribers.push(cb);
    if (this.#last) cb(this.#last);
  }
}
