import { isIP } from 'node:net';

export interface HostPort {
  host: string;
  port: number;
}

/**
 * "host:port" as the config and flags take it for a TCP listener: an IPv4 address, a
 * bracketed IPv6 address or a host name, and a port 0-65535 (0: any free port). Returns
 * a sentence naming what is wrong instead of throwing, for the schema's message.
 */
export function parseHostPort(s: string): HostPort | string {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(s);
  if (!m) return `must be host:port (e.g. 127.0.0.1:9090 or [::1]:9090), got "${s}"`;
  const host = m[1] ?? m[2]!;
  const port = Number(m[3]);
  if (port > 65535) return `port ${port} is out of range 0-65535`;
  if (m[1] !== undefined && isIP(host) !== 6) return `"${host}" in brackets is not an IPv6 address`;
  if (m[2] !== undefined && isIP(host) === 0 && !/^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$/.test(host)) {
    return `"${host}" is neither an IP address nor a host name`;
  }
  return { host, port };
}
