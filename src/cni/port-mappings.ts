import { isIP } from 'node:net';
import { invalidArgument } from '../core/errors.js';
import { Protocol, type PortMapping } from '../gen/runtime/v1/api.js';

/** The portmap plugin's capability arg. */
export interface CniPortMapping {
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp' | 'sctp';
  hostIP?: string;
}

const PROTOS: Record<number, CniPortMapping['protocol']> = { [Protocol.TCP]: 'tcp', [Protocol.UDP]: 'udp', [Protocol.SCTP]: 'sctp' };

/**
 * Checks a pod's port mappings and returns those the portmap plugin must set up
 * (host_port > 0). Bad ports, protocols or host IPs, and two mappings claiming the
 * same host port, are InvalidArgument.
 */
export function validatePortMappings(mappings: readonly PortMapping[]): CniPortMapping[] {
  const out: CniPortMapping[] = [];
  for (const [i, m] of mappings.entries()) {
    const where = `port_mappings[${i}]`;
    const protocol = PROTOS[m.protocol];
    if (protocol === undefined) throw invalidArgument(`${where}: protocol ${m.protocol} is not one of TCP, UDP, SCTP`);
    if (!Number.isInteger(m.containerPort) || m.containerPort < 1 || m.containerPort > 65535) {
      throw invalidArgument(`${where}: container_port ${m.containerPort} is out of range 1-65535`);
    }
    if (!Number.isInteger(m.hostPort) || m.hostPort < 0 || m.hostPort > 65535) {
      throw invalidArgument(`${where}: host_port ${m.hostPort} is out of range 0-65535 (0: not published)`);
    }
    if (m.hostIp !== '' && isIP(m.hostIp) === 0) throw invalidArgument(`${where}: host_ip "${m.hostIp}" is not an IP address`);
    if (m.hostPort === 0) continue;
    const cur: CniPortMapping = { hostPort: m.hostPort, containerPort: m.containerPort, protocol };
    if (m.hostIp !== '') cur.hostIP = m.hostIp;
    const clash = out.find((o) => portsConflict(o, cur));
    if (clash) throw invalidArgument(`${where}: host port ${m.hostPort}/${protocol} is mapped twice in this pod`);
    out.push(cur);
  }
  return out;
}

/** Same port and protocol on overlapping host addresses (unset or a wildcard overlaps everything). */
export function portsConflict(a: CniPortMapping, b: CniPortMapping): boolean {
  if (a.hostPort !== b.hostPort || a.protocol !== b.protocol) return false;
  const wild = (ip: string | undefined) => ip === undefined || ip === '0.0.0.0' || ip === '::';
  return wild(a.hostIP) || wild(b.hostIP) || a.hostIP === b.hostIP;
}

/**
 * Bandwidth capability from the kubernetes.io/{ingress,egress}-bandwidth annotations
 * (Kubernetes quantities such as 10M or 1Gi, bits per second), as the bandwidth
 * plugin wants it. Bursts are unlimited in practice, as kubelet's dockershim did.
 */
export function bandwidthFromAnnotations(annotations: Readonly<Record<string, string>>): Record<string, number> | undefined {
  const out: Record<string, number> = {};
  const burst = 2 ** 31 - 1;
  for (const [dir, key] of [
    ['ingress', 'kubernetes.io/ingress-bandwidth'],
    ['egress', 'kubernetes.io/egress-bandwidth'],
  ] as const) {
    const v = annotations[key];
    if (v === undefined) continue;
    const rate = parseQuantity(v);
    if (rate === undefined || rate <= 0) throw invalidArgument(`annotation ${key}="${v}" is not a positive bandwidth like 10M`);
    out[`${dir}Rate`] = rate;
    out[`${dir}Burst`] = burst;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

const SUFFIX: Record<string, number> = {
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
};

export function parseQuantity(s: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(k|M|G|T|Ki|Mi|Gi|Ti)?$/.exec(s.trim());
  if (!m) return undefined;
  return Math.round(Number(m[1]) * SUFFIX[m[2] ?? '']!);
}
