import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { Agent, request, type Dispatcher } from 'undici';
import type { OpContext } from '../core/context.js';
import { abortError, CricketError } from '../core/errors.js';
import type { Endpoint } from './registries-conf.js';

/** Credentials for one pull; held in memory only, never logged or written. */
export interface Credentials {
  username?: string;
  password?: string;
  identityToken?: string;
  registryToken?: string;
}

export interface FetchedManifest {
  mediaType: string;
  bytes: Buffer;
  /** Digest of the bytes (verified against the request digest when pulling by digest). */
  digest: string;
}

export const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.v1+prettyjws',
  'application/vnd.docker.distribution.manifest.v1+json',
].join(', ');

const MAX_MANIFEST_BYTES = 4 << 20;

/** The failure kubelet recognises by prefix: the registry cannot be reached or refuses. */
export function registryUnavailable(message: string, cause?: unknown): CricketError {
  return new CricketError('Unknown', `RegistryUnavailable: ${message}`, cause === undefined ? {} : { cause });
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

type Challenge = { scheme: 'bearer'; params: Record<string, string> } | { scheme: 'basic' };

/**
 * OCI Distribution API v2 client over undici: scheme choice (https, or plain http for
 * insecure and loopback registries), the WWW-Authenticate challenge flow with
 * tokens cached per scope until they expire, basic auth, and redirects that drop
 * credentials when they leave the registry's origin.
 */
export class RegistryClient {
  readonly #secure = new Agent({ connections: 16 });
  readonly #insecure = new Agent({ connections: 16, connect: { rejectUnauthorized: false } });
  readonly #schemes = new Map<string, 'https' | 'http'>();
  readonly #tokens = new Map<string, CachedToken>();
  readonly #progressTimeoutMs: number;

  constructor(opts: { progressTimeoutMs: number }) {
    this.#progressTimeoutMs = opts.progressTimeoutMs;
  }

  /** Daemon shutdown: pulls were already aborted, so drop any connection left rather than wait on it. */
  async close(): Promise<void> {
    await Promise.all([this.#secure.destroy(), this.#insecure.destroy()]);
  }

  /** GET a manifest by tag or digest. 404 is NotFound; other refusals are RegistryUnavailable. */
  async getManifest(ctx: OpContext, ep: Endpoint, reference: string, creds: Credentials): Promise<FetchedManifest> {
    const res = await this.#send(ctx, ep, 'GET', `/v2/${ep.path}/manifests/${reference}`, { accept: MANIFEST_ACCEPT }, creds);
    const what = `manifest ${ep.host}/${ep.path}${reference.includes(':') ? '@' : ':'}${reference}`;
    if (res.statusCode === 404) {
      await res.body.dump();
      throw new CricketError('NotFound', `${what} not found`);
    }
    await this.#expectOk(res, what);
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const c of res.body as AsyncIterable<Buffer>) {
      n += c.length;
      if (n > MAX_MANIFEST_BYTES) {
        res.body.destroy();
        throw new CricketError('InvalidArgument', `${what} is larger than ${MAX_MANIFEST_BYTES} bytes`);
      }
      chunks.push(c);
    }
    const bytes = Buffer.concat(chunks);
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    // By tag there is no digest to check against but the registry's own claim.
    const claimed = String(res.headers['docker-content-digest'] ?? '');
    if (claimed.startsWith('sha256:') && claimed !== digest) {
      throw new CricketError('InvalidArgument', `${what}: content does not match its digest: registry says ${claimed}, content is ${digest}`);
    }
    const ct = String(res.headers['content-type'] ?? '').split(';')[0]!.trim();
    let mediaType = ct;
    try {
      const parsed = JSON.parse(bytes.toString('utf8')) as { mediaType?: string };
      if (typeof parsed.mediaType === 'string' && parsed.mediaType !== '') mediaType = parsed.mediaType;
    } catch {
      throw new CricketError('InvalidArgument', `${what} is not JSON`);
    }
    return { mediaType, bytes, digest };
  }

  /** GET a blob as a stream; the caller verifies its digest while storing it. */
  async openBlob(ctx: OpContext, ep: Endpoint, digest: string, creds: Credentials): Promise<Readable> {
    const res = await this.#send(ctx, ep, 'GET', `/v2/${ep.path}/blobs/${digest}`, {}, creds);
    const what = `blob ${digest} from ${ep.host}/${ep.path}`;
    if (res.statusCode === 404) {
      await res.body.dump();
      throw new CricketError('NotFound', `${what} not found`);
    }
    await this.#expectOk(res, what);
    return res.body;
  }

  async #expectOk(res: Dispatcher.ResponseData, what: string): Promise<void> {
    if (res.statusCode >= 200 && res.statusCode < 300) return;
    const text = (await res.body.text().catch(() => '')).slice(0, 300).replace(/\s+/g, ' ');
    throw registryUnavailable(`${what}: HTTP ${res.statusCode}${text ? ` ${text}` : ''}`);
  }

  // Loopback registries are trusted like insecure ones (docker does the same): a
  // self-signed certificate on 127.0.0.1 is the common case there.
  #dispatcher(ep: Endpoint): Dispatcher {
    return ep.insecure || isLoopback(ep.host) ? this.#insecure : this.#secure;
  }

  async #scheme(ctx: OpContext, ep: Endpoint): Promise<'https' | 'http'> {
    const known = this.#schemes.get(ep.host);
    if (known) return known;
    if (!ep.insecure && !isLoopback(ep.host)) {
      this.#schemes.set(ep.host, 'https');
      return 'https';
    }
    // Insecure (and loopback, as docker does): TLS if the registry speaks it, else plain HTTP.
    try {
      const res = await request(`https://${ep.host}/v2/`, {
        method: 'GET',
        dispatcher: this.#insecure,
        signal: ctx.signal,
        headersTimeout: this.#progressTimeoutMs,
        bodyTimeout: this.#progressTimeoutMs,
      });
      await res.body.dump();
      this.#schemes.set(ep.host, 'https');
      return 'https';
    } catch (err) {
      if (ctx.signal.aborted) throw abortError(ctx.signal, `reach ${ep.host}`);
      // Nobody listening tells nothing about TLS: decide again next time.
      const code = (err as { code?: string }).code ?? '';
      if (['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN'].includes(code)) return 'http';
      ctx.log.debug({ host: ep.host, err: (err as Error).message }, 'registry does not speak TLS; using plain HTTP');
      this.#schemes.set(ep.host, 'http');
      return 'http';
    }
  }

  async #send(
    ctx: OpContext,
    ep: Endpoint,
    method: 'GET' | 'HEAD',
    path: string,
    headers: Record<string, string>,
    creds: Credentials,
  ): Promise<Dispatcher.ResponseData> {
    const scheme = await this.#scheme(ctx, ep);
    const origin = `${scheme}://${ep.host}`;
    const scope = `repository:${ep.path}:pull`;
    const tokenKey = `${ep.host}|${scope}|${credentialId(creds)}`;
    let auth = this.#cachedAuth(tokenKey, creds);
    for (let attempt = 0; ; attempt++) {
      const res = await this.#follow(ctx, ep, origin, method, path, { ...headers, ...(auth ? { authorization: auth } : {}) });
      if (res.statusCode !== 401 || attempt > 0) return res;
      const challenge = parseChallenge(String(res.headers['www-authenticate'] ?? ''));
      await res.body.dump();
      if (!challenge) throw registryUnavailable(`${ep.host} answered 401 without a usable WWW-Authenticate challenge`);
      if (challenge.scheme === 'basic') {
        if (!creds.username) throw registryUnavailable(`${ep.host} requires credentials (basic auth) and none were given`);
        auth = basicAuth(creds);
      } else {
        const token = await this.#fetchToken(ctx, ep, challenge.params, scope, creds);
        this.#tokens.set(tokenKey, token);
        auth = `Bearer ${token.token}`;
      }
    }
  }

  #cachedAuth(key: string, creds: Credentials): string | undefined {
    if (creds.registryToken) return `Bearer ${creds.registryToken}`;
    const t = this.#tokens.get(key);
    if (t && t.expiresAt > Date.now()) return `Bearer ${t.token}`;
    if (t) this.#tokens.delete(key);
    return undefined;
  }

  /** Sends one request, following up to 5 redirects; credentials go only to the registry's own origin. */
  async #follow(
    ctx: OpContext,
    ep: Endpoint,
    origin: string,
    method: 'GET' | 'HEAD',
    path: string,
    headers: Record<string, string>,
  ): Promise<Dispatcher.ResponseData> {
    let url = new URL(path, origin);
    let hdrs = headers;
    for (let hop = 0; hop <= 5; hop++) {
      let res: Dispatcher.ResponseData;
      try {
        res = await request(url, {
          method,
          headers: { 'user-agent': 'cricket', ...hdrs },
          dispatcher: this.#dispatcher(ep),
          signal: ctx.signal,
          headersTimeout: this.#progressTimeoutMs,
          bodyTimeout: this.#progressTimeoutMs,
        });
      } catch (err) {
        if (ctx.signal.aborted) throw abortError(ctx.signal, `${method} ${url.host}${url.pathname}`);
        throw registryUnavailable(`cannot reach ${url.host}: ${(err as Error).message}`, err);
      }
      if (res.statusCode >= 300 && res.statusCode < 400 && res.headers['location']) {
        await res.body.dump();
        const next = new URL(String(res.headers['location']), url);
        if (next.origin !== url.origin) {
          const { authorization: _dropped, ...rest } = hdrs;
          hdrs = rest;
        }
        url = next;
        continue;
      }
      return res;
    }
    throw registryUnavailable(`${ep.host}: too many redirects`);
  }

  async #fetchToken(
    ctx: OpContext,
    ep: Endpoint,
    params: Record<string, string>,
    scope: string,
    creds: Credentials,
  ): Promise<CachedToken> {
    const realm = params['realm'];
    if (!realm) throw registryUnavailable(`${ep.host}: bearer challenge without a realm`);
    let realmUrl: URL;
    try {
      realmUrl = new URL(realm);
    } catch {
      throw registryUnavailable(`${ep.host}: bearer realm "${realm}" is not a URL`);
    }
    const service = params['service'];
    const wantScope = params['scope'] ?? scope;
    let res: Dispatcher.ResponseData;
    try {
      if (creds.identityToken) {
        // An identity token is an OAuth2 refresh token (docker login's "identitytoken").
        const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: creds.identityToken, client_id: 'cricket', scope: wantScope });
        if (service) form.set('service', service);
        res = await request(realmUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': 'cricket' },
          body: form.toString(),
          dispatcher: this.#dispatcher(ep),
          signal: ctx.signal,
          headersTimeout: this.#progressTimeoutMs,
          bodyTimeout: this.#progressTimeoutMs,
        });
      } else {
        if (service) realmUrl.searchParams.set('service', service);
        realmUrl.searchParams.set('scope', wantScope);
        const headers: Record<string, string> = { 'user-agent': 'cricket' };
        if (creds.username) headers['authorization'] = basicAuth(creds);
        res = await request(realmUrl, {
          method: 'GET',
          headers,
          dispatcher: this.#dispatcher(ep),
          signal: ctx.signal,
          headersTimeout: this.#progressTimeoutMs,
          bodyTimeout: this.#progressTimeoutMs,
        });
      }
    } catch (err) {
      if (ctx.signal.aborted) throw abortError(ctx.signal, `token from ${realmUrl.host}`);
      throw registryUnavailable(`cannot reach the token service ${realmUrl.host}: ${(err as Error).message}`, err);
    }
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw registryUnavailable(`the token service ${realmUrl.host} refused (HTTP ${res.statusCode}) for ${ep.host}/${ep.path}`);
    }
    let body: { token?: string; access_token?: string; expires_in?: number };
    try {
      body = (await res.body.json()) as typeof body;
    } catch {
      throw registryUnavailable(`the token service ${realmUrl.host} answered with something that is not JSON`);
    }
    const token = body.token ?? body.access_token;
    if (!token) throw registryUnavailable(`the token service ${realmUrl.host} answered without a token`);
    // Refresh a little early; 60 s is the spec's default lifetime.
    const ttl = Math.max(10, typeof body.expires_in === 'number' ? body.expires_in : 60) - 5;
    return { token, expiresAt: Date.now() + ttl * 1000 };
  }
}

function basicAuth(c: Credentials): string {
  return `Basic ${Buffer.from(`${c.username ?? ''}:${c.password ?? ''}`).toString('base64')}`;
}

/** An in-memory key for the token cache that does not contain the secret itself. */
function credentialId(c: Credentials): string {
  if (!c.username && !c.identityToken) return 'anon';
  return createHash('sha256').update(`${c.username ?? ''}\0${c.password ?? ''}\0${c.identityToken ?? ''}`).digest('hex').slice(0, 16);
}

export function isLoopback(host: string): boolean {
  const h = host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/** Parses `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`. */
export function parseChallenge(header: string): Challenge | undefined {
  const m = /^\s*(\w+)\s*(.*)$/s.exec(header);
  if (!m) return undefined;
  const scheme = m[1]!.toLowerCase();
  if (scheme === 'basic') return { scheme: 'basic' };
  if (scheme !== 'bearer') return undefined;
  const params: Record<string, string> = {};
  const re = /([A-Za-z_][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))/g;
  let p: RegExpExecArray | null;
  while ((p = re.exec(m[2]!)) !== null) params[p[1]!.toLowerCase()] = (p[2] ?? p[3] ?? '').replace(/\\(.)/g, '$1');
  return { scheme: 'bearer', params };
}

/** Credentials from a CRI AuthConfig; `auth` is base64 "user:password". */
export function credentialsFromAuth(a: { username: string; password: string; auth: string; identityToken: string; registryToken: string } | undefined): Credentials {
  if (!a) return {};
  const c: Credentials = {};
  if (a.username) c.username = a.username;
  if (a.password) c.password = a.password;
  if (a.auth && !a.username) {
    const decoded = Buffer.from(a.auth, 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    if (i > 0) {
      c.username = decoded.slice(0, i);
      c.password = decoded.slice(i + 1);
    }
  }
  if (a.identityToken) c.identityToken = a.identityToken;
  if (a.registryToken) c.registryToken = a.registryToken;
  return c;
}
