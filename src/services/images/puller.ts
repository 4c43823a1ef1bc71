import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { OpContext } from '../../core/context.js';
import { CricketError, isCode, wrap } from '../../core/errors.js';
import type { LayerFs } from '../../host/layer-fs.js';
import { unpackLayer } from '../../snapshots/unpack-layer.js';
import { type ContentStore, sha256Of } from '../../content/content-store.js';
import type { ImageStore, ImageRecord, LayerRec } from './image-store.js';
import { choosePlatform, hostPlatform, parseImageConfig, parseManifest, platformString, type Descriptor } from '../../registry/manifest.js';
import { formatReference, type ImageReference, parseReference, repoName, withDomain } from '../../registry/reference.js';
import { endpointsFor, type Endpoint, type RegistriesConf } from '../../registry/registries-conf.js';
import { type Credentials, type RegistryClient, registryUnavailable } from '../../registry/registry-client.js';
import { Limiter, SharedWork } from '../../core/shared-work.js';
import { pipeline, Transform, type Readable } from 'node:stream';
import { ByteCounts, PullTracker } from './pull-tracker.js';

export interface PullerDeps {
  content: ContentStore;
  images: ImageStore;
  client: RegistryClient;
  layerFs: LayerFs;
  maxConcurrentDownloads: number;
  loadConf(): Promise<RegistriesConf>;
  /** Serialises record changes (pull commit, remove, GC). */
  withRecords<T>(fn: () => Promise<T>): Promise<T>;
  /** A blob of this many bytes was downloaded into the content store (for the metrics). */
  downloaded?(bytes: number): void;
}

/**
 * PullImage's engine: reference → registries.conf endpoints (mirrors first) →
 * manifest (platform chosen from an index) → config → layers downloaded in parallel
 * (bounded) into the content store and unpacked into one dir per chain id → record.
 * Identical pulls, identical blob downloads and identical unpacks share one run.
 */
export class Puller {
  readonly #d: PullerDeps;
  readonly #pulls = new SharedWork<string>();
  readonly #blobs = new SharedWork<void>();
  readonly #unpacks = new SharedWork<void>();
  readonly #downloads: Limiter;
  readonly #unpackLimit = new Limiter(2);
  readonly #bytes = new ByteCounts();
  /** One tracker per shared pull (same key as #pulls), gone when that pull ends. */
  readonly #trackers = new Map<string, PullTracker>();
  #active = 0;
  #idleWaiters: (() => void)[] = [];
  #gate: Promise<unknown> | undefined;

  constructor(deps: PullerDeps) {
    this.#d = deps;
    this.#downloads = new Limiter(deps.maxConcurrentDownloads);
  }

  /** True while any pull is running: GC must not delete what a pull is about to use. */
  get busy(): boolean {
    return this.#active > 0;
  }

  /** Resolves when no pull is running. */
  idle(): Promise<void> {
    if (this.#active === 0) return Promise.resolve();
    return new Promise((r) => this.#idleWaiters.push(r));
  }

  /**
   * Pulls `image` and returns the image id (config digest). `watch`, if given, gets the
   * pull's progress tracker before any work starts (joined pulls share one).
   */
  async pull(ctx: OpContext, image: string, creds: Credentials, watch?: (t: PullTracker) => void): Promise<string> {
    const ref = parseReference(image);
    const credKey = creds.username || creds.identityToken || creds.registryToken ? sha256Of(JSON.stringify(creds)).slice(7, 23) : 'anon';
    const key = `${formatReference(ref)}|${credKey}`;
    let tracker = this.#trackers.get(key);
    if (!tracker) {
      tracker = new PullTracker(this.#bytes);
      this.#trackers.set(key, tracker);
    }
    const t = tracker;
    watch?.(t);
    return this.#pulls.run(key, ctx.signal, (signal) =>
      this.#track(() => this.#pullAny({ ...ctx, signal }, ref, creds, t)).finally(() => {
        if (this.#trackers.get(key) === t) this.#trackers.delete(key);
      }),
    );
  }

  /**
   * Runs fn with no pull running and none starting (GC: what a pull is about to use
   * must not be deleted under it).
   */
  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    while (this.#gate) await this.#gate.catch(() => {});
    const gate = (async () => {
      await this.idle();
      return fn();
    })();
    this.#gate = gate;
    try {
      return await gate;
    } finally {
      this.#gate = undefined;
    }
  }

  async #track<T>(fn: () => Promise<T>): Promise<T> {
    while (this.#gate) await this.#gate.catch(() => {});
    this.#active++;
    try {
      return await fn();
    } finally {
      if (--this.#active === 0) for (const w of this.#idleWaiters.splice(0)) w();
    }
  }

  async #pullAny(ctx: OpContext, ref: ImageReference, creds: Credentials, tracker: PullTracker): Promise<string> {
    const conf = await this.#d.loadConf();
    const tries = pullCandidates(ref, conf);
    const errors: CricketError[] = [];
    for (const cand of tries) {
      const { blocked, endpoints } = endpointsFor(conf, cand);
      if (blocked) {
        errors.push(registryUnavailable(`registry for ${repoName(cand)} is blocked in registries.conf`));
        continue;
      }
      for (const ep of endpoints) {
        try {
          return await this.#pullFrom(ctx, cand, ep, creds, tracker);
        } catch (err) {
          const e = err instanceof CricketError ? err : wrap(err, `pull from ${ep.host}`);
          if (isCode(e, 'Canceled') || isCode(e, 'DeadlineExceeded')) throw e;
          ctx.log.debug({ endpoint: ep.host, mirror: ep.mirror, err: e.message }, 'pull from endpoint failed');
          errors.push(e);
        }
      }
    }
    // The most telling failure: content or registry trouble beats "not found here".
    const best = errors.find((e) => !isCode(e, 'NotFound')) ?? errors[0];
    if (!best) throw new CricketError('NotFound', `no registry to pull ${formatReference(ref)} from`);
    if (isCode(best, 'NotFound')) {
      throw new CricketError('NotFound', `image ${formatReference(ref)} not found: ${errors.map((e) => e.message).join('; ')}`);
    }
    // kubelet matches the RegistryUnavailable prefix, so that message keeps its head.
    const others = errors.filter((e) => e !== best).map((e) => e.message);
    const also = others.length > 0 ? `; also tried: ${others.join('; ')}` : '';
    const msg = isCode(best, 'Unknown')
      ? `${best.message} (pulling ${formatReference(ref)}${also})`
      : `pull ${formatReference(ref)}: ${best.message}${also}`;
    throw new CricketError(best.code, msg, { cause: best });
  }

  async #pullFrom(ctx: OpContext, ref: ImageReference, ep: Endpoint, creds: Credentials, tracker: PullTracker): Promise<string> {
    const { client, content, images } = this.#d;
    const top = await client.getManifest(ctx, ep, ref.digest ?? ref.tag!, creds);
    if (ref.digest !== undefined && top.digest !== ref.digest) {
      throw new CricketError('InvalidArgument', `manifest content does not match the requested digest ${ref.digest} (got ${top.digest})`);
    }
    const manifestDigests = [top.digest];
    let parsed = parseManifest(top.mediaType, top.bytes);
    await content.writeVerified(top.digest, top.bytes);
    if (parsed.kind === 'index') {
      const want = hostPlatform();
      const chosen = choosePlatform(parsed.manifests, want);
      if (!chosen) {
        const has = parsed.manifests.map((m) => (m.platform ? platformString(m.platform) : 'unknown')).join(', ');
        throw new CricketError('NotFound', `${formatReference(ref)} has no image for ${platformString(want)} (it has: ${has || 'none'})`);
      }
      const m = await client.getManifest(ctx, ep, chosen.digest, creds);
      if (m.digest !== chosen.digest) {
        throw new CricketError('InvalidArgument', `manifest content does not match its digest ${chosen.digest} (got ${m.digest})`);
      }
      await content.writeVerified(m.digest, m.bytes);
      manifestDigests.push(m.digest);
      parsed = parseManifest(m.mediaType, m.bytes);
      if (parsed.kind === 'index') throw new CricketError('InvalidArgument', 'an index inside an index is not supported');
    }
    const { config: cfgDesc, layers } = parsed;
    await this.#fetchBlob(ctx, ep, cfgDesc, creds);
    const configBytes = await content.read(cfgDesc.digest);
    const cfg = parseImageConfig(configBytes, layers.length);
    const chainIds: string[] = [];
    for (const [i, diffId] of cfg.diffIds.entries()) {
      chainIds.push(i === 0 ? diffId : sha256Of(`${chainIds[i - 1]} ${diffId}`));
    }
    await mkdir(images.layersDir, { recursive: true, mode: 0o700 });
    tracker.setLayers(layers);
    // Every layer downloads (bounded) and unpacks as soon as its blob is in; layer
    // dirs are independent of each other, so order does not matter until the record.
    const results = await Promise.allSettled(
      layers.map((l, i) => this.#ensureLayer(ctx, ep, l, creds, cfg.diffIds[i]!, chainIds[i]!, tracker)),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    const layerRecs: LayerRec[] = layers.map((l, i) => ({
      digest: l.digest,
      mediaType: l.mediaType,
      size: l.size,
      diffId: cfg.diffIds[i]!,
      chainId: chainIds[i]!,
    }));
    const id = cfgDesc.digest;
    // name:tag@digest pulls by digest; the tag may name something else by now, so it is not recorded.
    const repoTag = ref.tag !== undefined && ref.digest === undefined ? formatReference(ref) : undefined;
    const repoDigest = `${repoName(ref)}@${top.digest}`;
    const size = cfgDesc.size + layers.reduce((n, l) => n + l.size, 0);
    await this.#d.withRecords(async () => {
      // A tag names one image: pulling it again moves it here.
      if (repoTag !== undefined) {
        for (const other of images.all()) {
          if (other.record.id !== id && other.record.repoTags.includes(repoTag)) {
            await images.persist({ ...other, record: { ...other.record, repoTags: other.record.repoTags.filter((t) => t !== repoTag) } });
          }
        }
      }
      const prev = images.get(id)?.record;
      const record: ImageRecord = {
        v: 1,
        id,
        repoTags: uniq([...(prev?.repoTags ?? []), ...(repoTag !== undefined ? [repoTag] : [])]),
        repoDigests: uniq([...(prev?.repoDigests ?? []), repoDigest]),
        manifestDigests: uniq([...(prev?.manifestDigests ?? []), ...manifestDigests]),
        configDigest: cfgDesc.digest,
        layers: layerRecs,
        size,
        pulledAt: Date.now(),
      };
      await images.persist({ record, configDoc: JSON.parse(configBytes.toString('utf8')) as Record<string, unknown> });
    });
    tracker.finish();
    ctx.log.info({ image: formatReference(ref), id, from: ep.host, mirror: ep.mirror }, 'image pulled');
    return id;
  }

  async #fetchBlob(ctx: OpContext, ep: Endpoint, d: Descriptor, creds: Credentials, tracker?: PullTracker): Promise<void> {
    const { content, client } = this.#d;
    if (await content.has(d.digest)) return;
    // A joined download may already be under way: its bytes are counted by digest.
    if (this.#bytes.get(d.digest) !== undefined) tracker?.mark(d.digest, 'downloading');
    await this.#blobs.run(d.digest, ctx.signal, (signal) =>
      this.#downloads.run(async () => {
        if (await content.has(d.digest)) return;
        const c = { ...ctx, signal };
        const counter = this.#bytes.open(d.digest);
        tracker?.mark(d.digest, 'downloading');
        try {
          const body = await client.openBlob(c, ep, d.digest, creds);
          await content.ingest(d.digest, d.size, counted(body, counter), signal);
          this.#d.downloaded?.(d.size);
        } catch (err) {
          if (err instanceof CricketError || signal.aborted) throw err;
          // The body broke off (connection reset, no progress within the timeout).
          throw registryUnavailable(`download of ${d.digest} from ${ep.host} failed: ${(err as Error).message}`, err);
        } finally {
          this.#bytes.close(d.digest, counter);
        }
      }),
    );
  }

  async #ensureLayer(
    ctx: OpContext,
    ep: Endpoint,
    d: Descriptor,
    creds: Credentials,
    diffId: string,
    chainId: string,
    tracker: PullTracker,
  ): Promise<void> {
    const { images, content, layerFs } = this.#d;
    const dir = images.layerDir(chainId);
    if (await exists(dir)) return tracker.mark(d.digest, 'exists');
    await this.#fetchBlob(ctx, ep, d, creds, tracker);
    tracker.mark(d.digest, 'unpacking');
    await this.#unpacks.run(chainId, ctx.signal, (signal) =>
      this.#unpackLimit.run(async () => {
        if (await exists(dir)) return;
        const tmp = join(images.layersDir, `.tmp-${chainId.slice(7, 23)}-${randomBytes(4).toString('hex')}`);
        await mkdir(tmp, { mode: 0o755 });
        try {
          await unpackLayer({ blobPath: content.path(d.digest), destDir: tmp, expectedDiffId: diffId, fs: layerFs, signal });
          await rename(tmp, dir);
        } catch (err) {
          await rm(tmp, { recursive: true, force: true });
          throw err instanceof CricketError ? new CricketError(err.code, `layer ${d.digest}: ${err.message}`, { cause: err }) : err;
        }
      }),
    );
    tracker.mark(d.digest, 'done');
  }
}

/** Which fully qualified names a reference may mean: aliases, then search registries, else docker.io. */
export function pullCandidates(ref: ImageReference, conf: RegistriesConf): ImageReference[] {
  if (!ref.shortName) return [ref];
  const bare = ref.path.replace(/^library\//, '');
  const alias = conf.aliases.get(bare) ?? conf.aliases.get(ref.path);
  if (alias) {
    const a = parseReference(alias, false);
    return [{ ...a, tag: ref.tag ?? a.tag ?? (ref.digest ? undefined : 'latest'), digest: ref.digest, shortName: false }];
  }
  if (conf.unqualifiedSearch.length === 0) return [{ ...ref, shortName: false }];
  return conf.unqualifiedSearch.map((reg) => withDomain(ref, reg));
}

/** The body with its bytes counted as they pass (errors of the body carry through). */
function counted(body: Readable, counter: { n: number }): Readable {
  const t = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      counter.n += chunk.length;
      cb(null, chunk);
    },
  });
  return pipeline(body, t, () => {});
}

function uniq(xs: string[]): string[] {
  return [...new Set(xs)];
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}
