import type { ProcSample } from './sampler.js';
import type { MethodTally } from './rpc.js';

// The soak's figures: memory and fd growth, restart-aware, and the tables it prints.
//
// A SIGKILL resets the process, so the run is a sequence of epochs (one per process).
// Growth is judged two ways, each on medians of ~10 s samples:
//   across  the first epoch's window [warm-up, warm-up + W) against the same window
//           of the last epoch that has one: does a daemon restarted after N minutes of
//           churn hold more than the first did at the same age? (state that grows
//           with the run: records, caches loaded at recovery)
//   within  in each epoch, that window against the epoch's last W (not overlapping):
//           does one process grow while it runs? The median over epochs is judged.
// Without kills there is one epoch and "within" is the whole run's growth.

export interface Sample {
  tMs: number;
  epoch: number;
  ageMs: number;
  proc: ProcSample;
  conmons: number;
  liveContainers: number;
  pods: number;
}

export type Metric = 'rssKiB' | 'pssKiB' | 'heapUsed' | 'heapOld' | 'fds' | 'handles';

export const minimum = (xs: number[]) => (xs.length === 0 ? NaN : xs.reduce((a, b) => Math.min(a, b), Infinity));

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function pct(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

export interface Growth {
  first?: number;
  /** Same-age window of the last epoch that has one (other than the first). */
  sameAge?: number;
  acrossPct?: number;
  withinPcts: number[];
  withinMedianPct?: number;
  /** Median of the run's last W, whatever its epoch (for the record). */
  last?: number;
}

const MIN_N = 3;

/**
 * `stat` sums up a window: the median for RSS and PSS; the minimum (the floor) for the V8
 * heap — between collections, the nearest to the live size a sample can get without
 * --trace-gc (which NODE_OPTIONS does not take) — and for fds and libuv handles, which
 * rise and fall with the work in flight. A leak raises the floor.
 */
export function growth(samples: Sample[], m: Metric, warmMs: number, winMs: number, stat: (xs: number[]) => number = median): Growth {
  const epochs = [...new Set(samples.map((s) => s.epoch))];
  const val = (xs: Sample[]) => stat(xs.map((s) => s.proc[m]));
  const early = (e: number) => samples.filter((s) => s.epoch === e && s.ageMs >= warmMs && s.ageMs < warmMs + winMs);
  const out: Growth = { withinPcts: [] };
  const a = epochs.length > 0 ? early(epochs[0]!) : [];
  if (a.length >= MIN_N) out.first = val(a);
  for (const e of epochs.slice(1).reverse()) {
    const b = early(e);
    if (b.length >= MIN_N && out.first !== undefined) {
      out.sameAge = val(b);
      out.acrossPct = (out.sameAge / out.first - 1) * 100;
      break;
    }
  }
  for (const e of epochs) {
    const es = samples.filter((s) => s.epoch === e);
    const maxAge = es.reduce((a, s) => Math.max(a, s.ageMs), 0);
    // Both windows of the same length (a minimum over fewer samples would read higher).
    if (maxAge - winMs < warmMs + winMs) continue;
    const late = es.filter((s) => s.ageMs > maxAge - winMs);
    const ea = early(e);
    if (late.length >= MIN_N && ea.length >= MIN_N) out.withinPcts.push((val(late) / val(ea) - 1) * 100);
  }
  if (out.withinPcts.length > 0) out.withinMedianPct = median(out.withinPcts);
  const end = samples.length > 0 ? samples[samples.length - 1]!.tMs : 0;
  const lastWin = samples.filter((s) => s.tMs > end - winMs);
  if (lastWin.length > 0) out.last = val(lastWin);
  return out;
}

/** Per-minute medians of a metric: the curve, compact. */
export function curve(samples: Sample[], m: Metric, scale: (v: number) => string, stat: (xs: number[]) => number = median): string {
  const byMin = new Map<number, number[]>();
  for (const s of samples) {
    const k = Math.floor(s.tMs / 60_000);
    byMin.set(k, [...(byMin.get(k) ?? []), s.proc[m]]);
  }
  return [...byMin.entries()].sort((a, b) => a[0] - b[0]).map(([, xs]) => scale(stat(xs))).join(' ');
}

export const mib = (kib: number) => (kib / 1024).toFixed(1);
export const mibB = (b: number) => (b / 1048576).toFixed(1);

export function signedPct(p: number | undefined): string {
  if (p === undefined || Number.isNaN(p)) return 'n/a';
  return `${p >= 0 ? '+' : ''}${p.toFixed(1)}%`;
}

/** A fixed-width table. */
export function table(head: string[], rows: (string | number)[][]): string {
  const cells = [head, ...rows.map((r) => r.map(String))];
  const w = head.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  return cells.map((r, j) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  ') + (j === 0 ? `\n${w.map((x) => '-'.repeat(x)).join('  ')}` : '')).join('\n');
}

export function rpcTable(tally: Map<string, MethodTally>): string {
  const rows = [...tally.entries()]
    .sort((a, b) => b[1].calls - a[1].calls)
    .map(([name, t]) => {
      const streamy = name === 'GetContainerEvents' || name.startsWith('check:');
      const l = t.latenciesMs;
      const f = (v: number) => (streamy || Number.isNaN(v) ? '-' : v.toFixed(v < 10 ? 1 : 0));
      return [name, t.calls, t.failed, t.inflight, t.unavailable, f(median(l)), f(pct(l, 99)), f(l.length ? l.reduce((a, b) => Math.max(a, b), 0) : NaN)];
    });
  return table(['call', 'calls', 'failed', 'in flight at kill', 'unavailable (recovery)', 'p50 ms', 'p99 ms', 'max ms'], rows);
}
