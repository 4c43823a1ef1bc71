import { readFile } from 'node:fs/promises';
import type { DNSConfig } from '../../gen/runtime/v1/api.js';
import { writeFileAtomic } from '../../store/atomic-write.js';

/** The pod's /etc/hosts: loopback names plus the pod's own IPs under its hostname; the host's for host-network pods. */
export function hostsContent(hostname: string, ips: readonly string[]): string {
  const lines = [
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    'fe00::0\tip6-localnet',
    'fe00::0\tip6-mcastprefix',
    'fe00::1\tip6-allnodes',
    'fe00::2\tip6-allrouters',
  ];
  for (const ip of ips) lines.push(`${ip}\t${hostname}`);
  return `${lines.join('\n')}\n`;
}

/** resolv.conf from the CRI dns_config, or undefined when the config says nothing. */
export function resolvConfContent(dns: DNSConfig | undefined): string | undefined {
  if (!dns || (dns.servers.length === 0 && dns.searches.length === 0 && dns.options.length === 0)) return undefined;
  const lines: string[] = [];
  if (dns.searches.length > 0) lines.push(`search ${dns.searches.join(' ')}`);
  for (const s of dns.servers) lines.push(`nameserver ${s}`);
  if (dns.options.length > 0) lines.push(`options ${dns.options.join(' ')}`);
  return `${lines.join('\n')}\n`;
}

/** Pod files live in the run root, which a reboot empties: whole after a crash, no fsync. */
export const RUN_ROOT_FILE = { sync: false } as const;

export async function writePodHosts(path: string, hostNetwork: boolean, hostname: string, ips: readonly string[]): Promise<void> {
  const text = hostNetwork ? await readHost('/etc/hosts', hostsContent(hostname, [])) : hostsContent(hostname, ips);
  await writeFileAtomic(path, text, 0o644, RUN_ROOT_FILE);
}

export async function writePodResolvConf(path: string, dns: DNSConfig | undefined): Promise<void> {
  await writeFileAtomic(path, resolvConfContent(dns) ?? (await readHost('/etc/resolv.conf', '')), 0o644, RUN_ROOT_FILE);
}

async function readHost(file: string, fallback: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch {
    return fallback;
  }
}
