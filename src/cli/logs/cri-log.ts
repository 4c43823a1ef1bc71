import { UsageError } from '../exit-codes.js';

/** One whole log line, its `P` pieces joined: `<RFC3339Nano> <stream> <P|F> <text>`. */
export interface LogLine {
  time: string;
  /** Milliseconds since the epoch (for --since). */
  ms: number;
  stream: 'stdout' | 'stderr';
  text: string;
}

/**
 * Joins CRI log records into whole lines, per stream (a partial stdout line and a
 * stderr line may interleave). Records that do not parse are passed through as
 * stdout text rather than dropped: a person reading logs wants to see them.
 */
export class CriLogParser {
  readonly #partial: Record<'stdout' | 'stderr', { time: string; text: string } | undefined> = { stdout: undefined, stderr: undefined };

  push(record: string): LogLine | undefined {
    const m = /^(\S+) (stdout|stderr) ([PF]) ?(.*)$/s.exec(record);
    if (!m) return { time: '', ms: 0, stream: 'stdout', text: record };
    const [, time, streamName, tag, text] = m as unknown as [string, string, 'stdout' | 'stderr', string, string];
    const prev = this.#partial[streamName];
    if (tag === 'P') {
      this.#partial[streamName] = { time: prev?.time ?? time, text: (prev?.text ?? '') + text };
      return undefined;
    }
    this.#partial[streamName] = undefined;
    const first = prev?.time ?? time;
    return { time: first, ms: Date.parse(first), stream: streamName, text: (prev?.text ?? '') + text };
  }
}

/** --since: a duration back from now (10s, 5m, 1h30m) or an RFC 3339 time. */
export function parseSince(v: string, now = Date.now()): number {
  const parts = [...v.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (parts.length > 0 && parts.map((p) => p[0]).join('') === v) {
    const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;
    return now - parts.reduce((n, p) => n + Number(p[1]) * unit[p[2] as keyof typeof unit], 0);
  }
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new UsageError(`--since takes a duration (10s, 5m, 1h) or an RFC 3339 time, not "${v}"`);
  return t;
}
