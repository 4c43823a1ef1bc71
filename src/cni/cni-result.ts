import { isIP } from 'node:net';

/** Compares CNI spec versions ("1.0.0" > "0.4.0"); unparseable versions sort lowest. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map((x) => Number.parseInt(x, 10) || 0);
  const pb = b.split('.').map((x) => Number.parseInt(x, 10) || 0);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

export const versionAtLeast = (v: string, min: string) => compareVersions(v, min) >= 0;

export type CniResult = Record<string, unknown>;

/**
 * The pod IPs in a CNI result, IPv4 first (kubelet takes the first as the primary).
 * From 0.3.0 on, `ips[].address` is CIDR notation and `interface` indexes
 * `interfaces`; addresses on an interface inside the sandbox are the pod's. Older
 * results carry `ip4.ip` and `ip6.ip`.
 */
export function podIpsFromResult(result: CniResult): string[] {
  const found: string[] = [];
  const ips = result['ips'];
  if (Array.isArray(ips)) {
    const ifaces = Array.isArray(result['interfaces']) ? (result['interfaces'] as Record<string, unknown>[]) : [];
    const inSandbox = (i: unknown) => typeof i === 'number' && typeof ifaces[i]?.['sandbox'] === 'string' && ifaces[i]!['sandbox'] !== '';
    const anyTagged = ips.some((e) => inSandbox((e as Record<string, unknown>)?.['interface']));
    for (const e of ips as Record<string, unknown>[]) {
      if (!e || typeof e['address'] !== 'string') continue;
      if (anyTagged && !inSandbox(e['interface'])) continue;
      found.push(e['address'].split('/')[0]!);
    }
  } else {
    for (const k of ['ip4', 'ip6']) {
      const v = result[k] as Record<string, unknown> | undefined;
      if (v && typeof v['ip'] === 'string') found.push(v['ip'].split('/')[0]!);
    }
  }
  const valid = [...new Set(found.filter((ip) => isIP(ip) !== 0))];
  return [...valid.filter((ip) => isIP(ip) === 4), ...valid.filter((ip) => isIP(ip) === 6)];
}

/** A plugin's error object (spec: code, msg, details) as one line. */
export function describePluginError(stdout: string): string | undefined {
  try {
    const e = JSON.parse(stdout) as { code?: unknown; msg?: unknown; details?: unknown };
    if (typeof e.msg !== 'string') return undefined;
    const details = typeof e.details === 'string' && e.details ? `: ${e.details}` : '';
    return `${e.msg}${details}${e.code !== undefined ? ` (CNI error code ${String(e.code)})` : ''}`;
  } catch {
    return undefined;
  }
}
