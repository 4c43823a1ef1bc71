import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestRegistry {
  /** 127.0.0.1:PORT — plain HTTP (or HTTPS with a self-signed cert when started with tls), no auth. */
  host: string;
  /** Where the registry keeps its storage (another registry can serve the same). */
  dataDir: string;
  /** Everything the registry printed so far (for failure messages). */
  output(): string;
  stop(): Promise<void>;
}

/** A port the kernel says is free right now (tiny race with other tests; each test retries start once). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function configYaml(dataDir: string, port: number, tls?: { cert: string; key: string }): string {
  // Same settings as ../shared/critest/registry-config.yml, on a private port and data dir.
  return [
    'version: 0.1',
    'log:',
    '  level: warn',
    'storage:',
    '  cache:',
    '    blobdescriptor: inmemory',
    '  filesystem:',
    `    rootdirectory: ${dataDir}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    ...(tls ? ['  tls:', `    certificate: ${tls.cert}`, `    key: ${tls.key}`] : []),
    '',
  ].join('\n');
}

export interface RegistryOptions {
  /** Serve HTTPS with a fresh self-signed certificate for 127.0.0.1. */
  tls?: boolean;
  /** Serve the storage of this registry (push over its plain HTTP, pull over TLS here). */
  shareDataWith?: TestRegistry;
}

/**
 * Starts Debian's docker-registry (the CNCF distribution registry) on a free loopback
 * port with its own temp data dir. stop() kills it and removes the dir.
 */
export async function startRegistry(opts: RegistryOptions = {}): Promise<TestRegistry> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await startOnce(opts);
    } catch (err) {
      if (attempt >= 2) throw err;
    }
  }
}

async function startOnce(opts: RegistryOptions): Promise<TestRegistry> {
  const dir = mkdtempSync(join(tmpdir(), 'cricket-registry-'));
  const port = await freePort();
  const cfg = join(dir, 'config.yml');
  const dataDir = opts.shareDataWith?.dataDir ?? join(dir, 'data');
  let tls: { cert: string; key: string } | undefined;
  if (opts.tls) {
    tls = { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') };
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', tls.key, '-out', tls.cert], { stdio: 'ignore' });
  }
  writeFileSync(cfg, configYaml(dataDir, port, tls));
  // A watchdog shell: if the test process dies without stop() (killed, timed out),
  // the registry and its temp dir go too instead of lingering on the machine.
  const watchdog = [
    '/usr/bin/docker-registry serve "$1" & r=$!',
    // Its pid first, for stop() to end it should this shell be killed before its trap runs.
    'echo "registry-pid $r"',
    // The shell's own messages ("Terminated") must not hit a pipe whose reader died.
    "trap '' PIPE; exec >/dev/null 2>&1",
    'trap \'kill $r 2>/dev/null; wait $r; exit 0\' TERM INT',
    'while kill -0 "$2" 2>/dev/null && kill -0 $r 2>/dev/null; do sleep 0.5; done',
    'kill $r 2>/dev/null; wait $r',
    'kill -0 "$2" 2>/dev/null || rm -rf "$3"',
  ].join('\n');
  const child = spawn('/bin/sh', ['-c', watchdog, 'sh', cfg, String(process.pid), dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const host = `127.0.0.1:${port}`;
  const registryPid = () => Number(/registry-pid (\d+)/.exec(out)?.[1] ?? 0);
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
    // On a busy machine the shell may have been SIGKILLed before its trap ended the
    // registry: an orphaned registry would hold this process's pipes (and a port) for good.
    const pid = registryPid();
    try {
      // Only if that pid is still our registry (a pid is recycled once its process is reaped).
      if (pid > 0 && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(cfg)) process.kill(pid, 'SIGKILL');
    } catch {
      // gone, as it should be
    }
    child.stdout.destroy();
    child.stderr.destroy();
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`docker-registry exited with ${child.exitCode}: ${out}`);
    }
    try {
      if (tls) {
        // Up when it accepts TCP; fetch would refuse the self-signed certificate.
        await new Promise<void>((resolve, reject) => {
          const sock = connect(port, '127.0.0.1', () => {
            sock.destroy();
            resolve();
          });
          sock.once('error', reject);
        });
        break;
      }
      const res = await fetch(`http://${host}/v2/`);
      await res.arrayBuffer();
      if (res.status === 200) break;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`docker-registry did not answer on ${host}: ${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { host, dataDir, output: () => out, stop };
}

export interface RegistriesConfOptions {
  /** Registry name prefixes (e.g. docker.io, registry.k8s.io) to serve from the loopback registry as a mirror. */
  mirrorFor?: string[];
  /** Top-level keys (e.g. unqualified-search-registries) placed before any table. */
  top?: string;
  /** Extra text appended to registries.conf. */
  extra?: string;
}

/**
 * Writes <dir>/registries.conf that marks the loopback registry insecure (plain HTTP)
 * and optionally mirrors other registries to it, plus an empty drop-in dir, and
 * returns the `[images]` TOML for startDaemon({ configToml }) so the daemon reads
 * only these files (never the host's /etc/containers).
 */
export function imagesConfigToml(dir: string, registryHost: string, opts: RegistriesConfOptions = {}): string {
  const conf = join(dir, 'registries.conf');
  const dropIns = join(dir, 'registries.conf.d');
  mkdirSync(dropIns, { recursive: true });
  let text = opts.top ? `${opts.top}\n\n` : '';
  text += `[[registry]]\nlocation = "${registryHost}"\ninsecure = true\n`;
  for (const prefix of opts.mirrorFor ?? []) {
    text += `\n[[registry]]\nprefix = "${prefix}"\nlocation = "${prefix}"\n[[registry.mirror]]\nlocation = "${registryHost}"\ninsecure = true\n`;
  }
  if (opts.extra) text += `\n${opts.extra}\n`;
  writeFileSync(conf, text);
  return `[images]\nregistries_conf = "${conf}"\nregistries_conf_dir = "${dropIns}"\n`;
}

export interface ProxyOptions {
  /** Require credentials: a bearer-token challenge (with a token endpoint on the proxy) or basic auth. */
  auth?: {
    mode: 'bearer' | 'basic';
    username: string;
    password: string;
    /** An OAuth2 refresh token the token service accepts (POST grant_type=refresh_token). */
    identityToken?: string;
    /** A bearer token the registry accepts as is (AuthConfig.registry_token). */
    registryToken?: string;
  };
  /** Replace this blob's bytes with garbage of the same length (digest mismatch). */
  corruptBlob?: string;
  /** Serve manifests with one extra trailing space (still JSON, another digest). */
  corruptManifests?: boolean;
  /** Send the headers and half of this blob, then nothing more (a stalled download). */
  stallBlob?: string;
  /** After the real bytes of matching blobs and/or all manifests, keep sending zeros until the client hangs up. */
  endless?: { blob?: string; manifests?: boolean };
}

export interface RegistryProxy {
  host: string;
  /** Count of GET requests per path seen (after auth). */
  hits: Map<string, number>;
  /** Authorization headers the token endpoint received. */
  tokenRequests: string[];
  /** The most blob GETs that were in progress at once. */
  maxBlobsInFlight(): number;
  stop(): Promise<void>;
}

/**
 * A small HTTP front for a test registry: adds an auth challenge (bearer with its
 * own token service, or basic), counts requests, and can corrupt a blob — things
 * Debian's registry cannot do without a TLS token server.
 */
export async function startRegistryProxy(upstream: string, opts: ProxyOptions = {}): Promise<RegistryProxy> {
  const { createServer: createHttpServer } = await import('node:http');
  const { randomBytes } = await import('node:crypto');
  const hits = new Map<string, number>();
  const tokenRequests: string[] = [];
  const tokens = new Set<string>();
  let host = '';
  let inFlight = 0;
  let maxInFlight = 0;
  const server = createHttpServer(async (req, res) => {
    const isBlob = req.method === 'GET' && /\/blobs\/sha256:/.test(req.url ?? '');
    if (isBlob) {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      res.once('close', () => inFlight--);
    }
    try {
      const url = new URL(req.url ?? '/', `http://${host}`);
      if (url.pathname === '/token' && req.method === 'POST') {
        let form = '';
        for await (const c of req) form += String(c);
        const f = new URLSearchParams(form);
        tokenRequests.push(`refresh:${f.get('refresh_token') ?? ''}`);
        if (f.get('grant_type') !== 'refresh_token' || !opts.auth?.identityToken || f.get('refresh_token') !== opts.auth.identityToken) {
          res.writeHead(401).end('{"errors":[{"code":"UNAUTHORIZED"}]}');
          return;
        }
        const t = randomBytes(12).toString('hex');
        tokens.add(t);
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: t, expires_in: 300 }));
        return;
      }
      if (url.pathname === '/token') {
        tokenRequests.push(req.headers.authorization ?? '');
        const want = `Basic ${Buffer.from(`${opts.auth!.username}:${opts.auth!.password}`).toString('base64')}`;
        if (req.headers.authorization !== want) {
          res.writeHead(401).end('{"errors":[{"code":"UNAUTHORIZED"}]}');
          return;
        }
        const t = randomBytes(12).toString('hex');
        tokens.add(t);
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: t, expires_in: 300 }));
        return;
      }
      if (opts.auth) {
        const a = req.headers.authorization ?? '';
        const ok =
          opts.auth.mode === 'basic'
            ? a === `Basic ${Buffer.from(`${opts.auth.username}:${opts.auth.password}`).toString('base64')}`
            : a.startsWith('Bearer ') && (tokens.has(a.slice(7)) || (opts.auth.registryToken !== undefined && a.slice(7) === opts.auth.registryToken));
        if (!ok) {
          const challenge =
            opts.auth.mode === 'basic'
              ? 'Basic realm="test"'
              : `Bearer realm="http://${host}/token",service="test-registry",scope="repository:${url.pathname.split('/').slice(2, -2).join('/')}:pull"`;
          res.writeHead(401, { 'www-authenticate': challenge, 'content-type': 'application/json' }).end('{"errors":[{"code":"UNAUTHORIZED"}]}');
          return;
        }
      }
      if (req.method === 'GET') hits.set(url.pathname, (hits.get(url.pathname) ?? 0) + 1);
      const up = await fetch(`http://${upstream}${url.pathname}${url.search}`, {
        method: req.method ?? 'GET',
        headers: { accept: req.headers.accept ?? '*/*' },
        redirect: 'manual',
      });
      let body = Buffer.from(await up.arrayBuffer());
      if (opts.corruptBlob && url.pathname.endsWith(`/blobs/${opts.corruptBlob}`) && body.length > 0) {
        body = Buffer.alloc(body.length, 0x41);
      }
      if (opts.corruptManifests && url.pathname.includes('/manifests/') && up.ok) body = Buffer.concat([body, Buffer.from(' ')]);
      const headers: Record<string, string> = {};
      for (const k of ['content-type', 'docker-content-digest', 'location']) {
        const v = up.headers.get(k);
        if (v) headers[k] = v;
      }
      headers['content-length'] = String(body.length);
      const endless =
        req.method === 'GET' &&
        up.ok &&
        ((opts.endless?.blob !== undefined && url.pathname.endsWith(`/blobs/${opts.endless.blob}`)) ||
          (opts.endless?.manifests === true && url.pathname.includes('/manifests/')));
      if (endless) {
        // A registry that lies about sizes: no content-length, and the body never ends.
        delete headers['content-length'];
        res.writeHead(up.status, headers);
        res.write(body);
        const zeros = Buffer.alloc(64 << 10);
        const pump = () => {
          while (!res.destroyed && res.write(zeros));
          if (!res.destroyed) res.once('drain', pump);
        };
        res.once('close', () => res.removeAllListeners('drain'));
        pump();
        return;
      }
      if (opts.stallBlob && url.pathname.endsWith(`/blobs/${opts.stallBlob}`) && req.method === 'GET') {
        res.writeHead(up.status, headers);
        res.write(body.subarray(0, Math.floor(body.length / 2)));
        return; // never ends; stop() closes the connection
      }
      res.writeHead(up.status, headers).end(req.method === 'HEAD' ? undefined : body);
    } catch (err) {
      res.writeHead(502).end(String(err));
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const addr = server.address();
  host = `127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  return {
    host,
    hits,
    tokenRequests,
    maxBlobsInFlight: () => maxInFlight,
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
