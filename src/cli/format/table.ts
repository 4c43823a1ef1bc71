export interface Column {
  header: string;
  /** May be cut (with …) when the table is wider than the terminal. */
  shrink?: boolean;
  /** May be left out when cutting is not enough; lower goes first. */
  drop?: number;
}

/**
 * Left-aligned columns three spaces apart, as crictl prints them. On a terminal
 * narrower than the table, the shrinkable columns are cut (widest first, never below
 * their header) so each row stays one line; not on a terminal (a pipe), nothing is cut.
 */
export function renderTable(allColumns: readonly Column[], allRows: readonly string[][], width: number | undefined): string {
  const gap = 3;
  let keep = allColumns.map((_, i) => i);
  let columns = allColumns;
  let rows = allRows;
  const widths = columns.map((c, i) => Math.max(c.header.length, ...rows.map((r) => (r[i] ?? '').length)));
  if (width !== undefined && width > 0) {
    const total = () => widths.reduce((a, b) => a + b, 0) + gap * (widths.length - 1);
    // Each shrinkable column can go down to its header (or 4); what is still too wide loses droppable columns.
    const floor = () =>
      columns.reduce((n, c, i) => n + (c.shrink ? Math.min(widths[i]!, Math.max(c.header.length, 4)) : widths[i]!), 0) + gap * (columns.length - 1);
    while (floor() > width) {
      let victim = -1;
      for (let i = 0; i < columns.length; i++) {
        const d = columns[i]!.drop;
        if (d !== undefined && (victim < 0 || d < columns[victim]!.drop!)) victim = i;
      }
      if (victim < 0) break;
      keep = keep.filter((_, i) => i !== victim);
      widths.splice(victim, 1);
      columns = keep.map((i) => allColumns[i]!);
      rows = allRows.map((r) => keep.map((i) => r[i] ?? ''));
    }
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
