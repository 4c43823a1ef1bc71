import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, isIP } from 'node:net';
import { join } from 'node:path';

/**
 * A private CNI network for one test: its own bridge name (ckt + 6 hex, within the
 * 15-character limit), a random free 10.233.x.0/24, host-local IPAM state in the
 * test's temp dir, bridge + host-local + portmap.
 */
export interface TestNet {
  confDir: string;
  ipamDir: string;
  bridge: string;
  subnetPrefix: string; // "10.233.x"
  ipv6Prefix: string; // "fd33:hhhh:xx::" (used when made with ipv6)
  gateway: string;
  name: string;
  /** Removes the bridge (the bridge plugin never deletes it). */
  destroy(): void;
}

export function makeTestNet(dir: string, opts: { cniVersion?: string; template?: string; ipv6?: boolean } = {}): TestNet {
  const routes = spawnSync('ip', ['-4', 'route', 'show'], { encoding: 'utf8' }).stdout;
  let x = randomInt(1, 255);
  for (let i = 0; i < 50 && routes.includes(`10.233.${x}.`); i++) x = randomInt(1, 255);
  const bridge = `ckt${randomBytes(3).toString('hex')}`;
  const name = `net-${bridge}`;
  const confDir = join(dir, 'cni-conf');
  const ipamDir = join(dir, 'ipam');
  mkdirSync(confDir, { recursive: true });
  const subnetPrefix = `10.233.${x}`;
  // A unique-local /64 per test for dual-stack runs.
  const ipv6Prefix = `fd33:${randomInt(0x1000, 0x10000).toString(16)}:${x.toString(16)}::`;
  if (opts.template) {
    // A shipped config with only the host-wide names swapped for private ones.
    const list = JSON.parse(readFileSync(opts.template, 'utf8'));
    list.name = name;
    for (const p of list.plugins) {
      if (p.type !== 'bridge') continue;
      p.bridge = bridge;
      p.ipam.dataDir = ipamDir;
      p.ipam.ranges = [[{ subnet: `${subnetPrefix}.0/24`, gateway: `${subnetPrefix}.1` }]];
    }
    writeFileSync(join(confDir, '10-test.conflist'), JSON.stringify(list));
  } else writeFileSync(
    join(confDir, '10-test.conflist'),
    JSON.stringify({
      cniVersion: opts.cniVersion ?? '1.0.0',
      name,
      plugins: [
        {
          type: 'bridge',
          bridge,
          isGateway: true,
          ipMasq: true,
          hairpinMode: true,
          ipam: {
            type: 'host-local',
            dataDir: ipamDir,
            routes: [{ dst: '0.0.0.0/0' }],
            ranges: [[{ subnet: `${subnetPrefix}.0/24` }], ...(opts.ipv6 ? [[{ subnet: `${ipv6Prefix}/64` }]] : [])],
          },
        },
        { type: 'portmap', capabilities: { portMappings: true } },
      ],
    }),
  );
  return {
    confDir,
    ipamDir,
    bridge,
    subnetPrefix,
    ipv6Prefix,
    gateway: `${subnetPrefix}.1`,
    name,
    destroy() {
      spawnSync('ip', ['link', 'del', bridge]);
    },
  };
}

/** Interfaces enslaved to the bridge (the host ends of pod veths). */
export function vethsOn(bridge: string): string[] {
  const r = spawnSync('ip', ['-o', 'link', 'show', 'master', bridge], { encoding: 'utf8' });
  return r.stdout.split('\n').filter((l) => l.trim() !== '');
}

/** IPAM reservation files (host-local writes one per IP, holding the container id). */
export function ipamReservations(net: TestNet): string[] {
  const d = join(net.ipamDir, net.name);
  if (!existsSync(d)) return [];
  return readdirSync(d).filter((f) => isIP(f) !== 0);
}

export function iptablesMentions(text: string): number {
  const out = spawnSync('iptables-save', [], { encoding: 'utf8' }).stdout + spawnSync('iptables-save', ['-t', 'nat'], { encoding: 'utf8' }).stdout;
  return out.split('\n').filter((l) => l.includes(text)).length;
}

export function mountsMentioning(text: string): number {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.includes(text)).length;
}

/** A TCP server inside a network namespace that answers every connection with `reply`. */
export async function serveInNetns(netnsPath: string, port: number, reply: string): Promise<ChildProcess> {
  const code = `require('net').createServer((s)=>{s.end(${JSON.stringify(reply)})}).listen(${port},()=>console.log('up'))`;
  const child = spawn('nsenter', [`--net=${netnsPath}`, '--', process.execPath, '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (c) => reject(new Error(`server in ${netnsPath} exited with ${c}`)));
  });
  return child;
}

/** Reads everything a TCP server sends, from this (host) network namespace. */
export function tcpRead(host: string, port: number, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, host);
    let buf = '';
    const t = setTimeout(() => {
      s.destroy();
      reject(new Error(`no answer from ${host}:${port}`));
    }, timeoutMs);
    s.on('data', (d) => (buf += d.toString()));
    s.on('end', () => {
      clearTimeout(t);
      resolve(buf);
    });
    s.on('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
}

/** The same, from inside another network namespace. */
export function tcpReadFromNetns(netnsPath: string, host: string, port: number): string {
  const code = `const s=require('net').connect(${port},${JSON.stringify(host)});let b='';s.on('data',d=>b+=d);s.on('end',()=>process.stdout.write(b));s.on('error',e=>{console.error(e.message);process.exit(3)});setTimeout(()=>process.exit(4),5000).unref()`;
  const r = spawnSync('nsenter', [`--net=${netnsPath}`, '--', process.execPath, '-e', code], { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) throw new Error(`connect from ${netnsPath} to ${host}:${port} failed: ${r.stderr}`);
  return r.stdout;
}

/** Waits until the bridge's IPv6 addresses have finished duplicate address detection (the host cannot use a tentative source). */
export async function waitIpv6Ready(bridge: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const out = spawnSync('ip', ['-6', 'addr', 'show', 'dev', bridge], { encoding: 'utf8' }).stdout;
    if (out.includes('inet6') && !out.includes('tentative')) return;
    if (Date.now() > deadline) throw new Error(`IPv6 on ${bridge} still tentative: ${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
