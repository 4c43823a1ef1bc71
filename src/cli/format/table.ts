export interface Column {
  header: string;
  /** May be cut (with …) when the table is wider than the terminal. */
  shrink?: boolean;
}

/**
 * Left-aligned columns three spaces apart, as crictl prints them. On a terminal
 * narrower than the table, the shrinkable columns are cut (widest first, never below
 * their header) so each row stays one line; not on a terminal (a pipe), nothing is cut.
 */
export function renderTable(columns: readonly Column[], rows: readonly string[][], width: number | undefined): string {
  const gap = 3;
  const widths = columns.map((c, i) => Math.max(c.header.length, ...rows.map((r) => (r[i] ?? '').length)));
  if (width !== undefined && width > 0) {
    const total = () => widths.reduce((a, b) => a + b, 0) + gap * (widths.length - 1);
    while (total() > width) {
      let widest = -1;
      for (let i = 0; i < columns.length; i++) {
        if (!columns[i]!.shrink || widths[i]! <= Math.max(columns[i]!.header.length, 4)) continue;
        if (widest < 0 || widths[i]! > widths[widest]!) widest = i;
      }
      if (widest < 0) break;
      widths[widest]! -= 1;
    }
  }
  const cell = (s: string, w: number, last: boolean) => {
    const cut = s.length > w ? `${s.slice(0, Math.max(0, w - 1))}…` : s;
    return last ? cut : cut.padEnd(w);
  };
  const line = (r: readonly string[]) =>
    columns.map((_, i) => cell(r[i] ?? '', widths[i]!, i === columns.length - 1)).join(' '.repeat(gap)).trimEnd();
  return [line(columns.map((c) => c.header)), ...rows.map(line)].join('\n') + '\n';
}
