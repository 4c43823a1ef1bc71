/** Latency summaries shared by the bench scripts (bench/run.ts skips lib-* files). */

export function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

/** One aligned line: count, median, p90, mean and max in milliseconds. */
export function line(label: string, ms: number[]): string {
  const mean = ms.reduce((a, b) => a + b, 0) / ms.length;
  return `${label.padEnd(44)} n=${ms.length}  median ${pct(ms, 50).toFixed(1)} ms  p90 ${pct(ms, 90).toFixed(1)} ms  mean ${mean.toFixed(1)} ms  max ${Math.max(...ms).toFixed(1)} ms`;
}
