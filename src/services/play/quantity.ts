/** Kubernetes quantities: cpu as millicores ("500m", "0.5", "2"), memory as bytes ("64Mi", "1G", "1000"). */
export function parseQuantity(text: string, kind: 'cpu' | 'memory'): number | undefined {
  const m = /^([0-9]+(?:\.[0-9]+)?)(m|k|M|G|T|P|Ki|Mi|Gi|Ti|Pi)?$/.exec(text);
  if (!m) return undefined;
  const n = Number(m[1]);
  const suffix = m[2] ?? '';
  if (kind === 'cpu') {
    if (suffix === 'm') return Math.round(n);
    return suffix === '' ? Math.round(n * 1000) : undefined;
  }
  const mult: Record<string, number> = { '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50 };
  return suffix === 'm' ? undefined : Math.round(n * mult[suffix]!);
}
