import { mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Deps } from '../deps.js';
import type { ImagesArea } from './api.js';
import type { OpContext } from '../../core/context.js';
import { KeyedMutex } from '../../core/keyed-mutex.js';
import { failureReason, timed } from '../../core/metrics.js';
import { inSpan } from '../../core/tracing.js';
import { CricketError } from '../../core/errors.js';
import { realLayerFs, type LayerFs } from '../../host/layer-fs.js';
import { ContentStore } from '../../content/content-store.js';
import type { ImagesCore } from './images-deps.js';
import { makeImageFsInfo } from './image-fs-info.js';
import { makeImageStatus } from './image-status.js';
import { ImageStore } from './image-store.js';
import { makeListImages, makeStreamImages } from './list-images.js';
import { makePullImage } from './pull-image.js';
import { Puller } from './puller.js';
import { emptyRegistriesConf, loadRegistriesConf, type RegistriesConf } from '../../registry/registries-conf.js';
import { credentialsFromAuth, RegistryClient } from '../../registry/registry-client.js';
import { invalidArgument } from '../../core/errors.js';
import { makeRemoveImage } from './remove-image.js';




export interface ImagesOptions {
  /** The OS seam for unpacking (tests may pass a fake). */
  layerFs?: LayerFs;
}

/**
 * Data under <root>/images: blobs/sha256/<hex> (content store), ingest/ (downloads
 * in flight), layers/<chain hex>/ (unpacked overlay lower dirs), records/ (one JSON
 * per image id).
 */
export async function createImages(
  base: Pick<Deps, 'config' | 'log'> & Partial<Pick<Deps, 'metrics'>>,
  opts: ImagesOptions = {},
): Promise<ImagesArea> {
  const { config, log, metrics } = base;
  const imagesDir = join(config.daemon.root, 'images');
  const content = new ContentStore(imagesDir);
  const images = new ImageStore(imagesDir);
  const client = new RegistryClient({ progressTimeoutMs: config.images.pull_progress_timeout_seconds * 1000 });
  // Registry requests as children of the pull's span (the manifest, and each blob until its body opens).
  const tracedClient = Object.create(client) as RegistryClient;
  tracedClient.getManifest = (ctx, ep, ref, creds) =>
    inSpan(ctx, 'registry GET manifest', { 'registry.host': ep.host, 'registry.mirror': ep.mirror }, () => client.getManifest(ctx, ep, ref, creds));
  tracedClient.openBlob = (ctx, ep, digest, creds) =>
    inSpan(ctx, 'registry GET blob', { 'registry.host': ep.host, 'registry.mirror': ep.mirror }, () => client.openBlob(ctx, ep, digest, creds));
  const recordsLock = new KeyedMutex();
  let generation = 0;
  const withRecords = <T>(fn: () => Promise<T>) =>
    recordsLock.run('records', async () => {
      try {
        return await fn();
      } finally {
        generation++;
      }
    });
  let conf: RegistriesConf = emptyRegistriesConf();
  const loadConf = async () => {
    conf = await loadRegistriesConf(config.images.registries_conf, config.images.registries_conf_dir);
    return conf;
  };
  const puller = new Puller({
    content,
    images,
    client: tracedClient,
    layerFs: opts.layerFs ?? realLayerFs,
    maxConcurrentDownloads: config.images.max_concurrent_downloads,
    loadConf,
    withRecords,
    downloaded: metrics ? (bytes) => metrics.imageBytesPulled(bytes) : undefined,
  });
  metrics?.addSource({
    imageStore: () => {
      const all = images.all();
      return { images: all.length, bytes: all.reduce((n, i) => n + i.record.size, 0) };
    },
  });


  // Caller guarantees no pull runs (Puller.exclusive or recovery).
  const sweep = async (): Promise<{ blobs: number; layers: number }> => {
    const blobs = new Set<string>();
    const chains = new Set<string>();
    for (const { record } of images.all()) {
      for (const d of record.manifestDigests) blobs.add(d);
      blobs.add(record.configDigest);
      for (const l of record.layers) {
        blobs.add(l.digest);
        chains.add(images.layerDir(l.chainId));
      }
    }
    let nb = 0;
    for (const d of await content.list()) {
      if (!blobs.has(d)) {
        await content.delete(d);
        nb++;
      }
    }
    let nl = 0;
    for (const name of await readdir(images.layersDir).catch(() => [] as string[])) {
      const p = join(images.layersDir, name);
      if (!chains.has(p)) {
        await rm(p, { recursive: true, force: true });
        nl++;
      }
    }
    return { blobs: nb, layers: nl };
  };

  let gcQueued = false;
  const runGc = async () => {
    const r = await puller.exclusive(() => withRecords(sweep));
    if (r.blobs + r.layers > 0) log.info(r, 'image garbage collected');
    return r;
  };

  const core: ImagesCore = {
    config,
    imagesDir,
    content,
    images,
    puller,
    currentConf: () => conf,
    generation: () => generation,
    withRecords,
    collectGarbage: async () => {
      // A RemoveImage must not wait minutes for an unrelated big pull: while pulls
      // run, the sweep is queued for when they are done.
      if (puller.busy) {
        if (!gcQueued) {
          gcQueued = true;
          void puller
            .idle()
            .then(() => {
              gcQueued = false;
              return runGc();
            })
            .catch((err: unknown) => log.warn({ err: (err as Error).message }, 'image garbage collection failed'));
        }
        return { blobs: 0, layers: 0 };
      }
      return runGc();
    },
  };

  const recover = async (ctx: OpContext): Promise<void> => {
    await mkdir(imagesDir, { recursive: true, mode: 0o700 });
    await mkdir(images.layersDir, { recursive: true, mode: 0o700 });
    await content.init();
    try {
      await loadConf();
    } catch (err) {
      ctx.log.warn({ err: (err as Error).message }, 'registries config unreadable; pulls will retry it');
    }
    const { good, bad } = await images.records.loadAll();
    for (const b of bad) ctx.log.warn({ record: b.key, reason: b.reason }, 'skipping unreadable image record');
    for (const record of good.values()) {
      try {
        const configDoc = JSON.parse(await readFile(content.path(record.configDigest), 'utf8')) as Record<string, unknown>;
        // An image whose unpacked layers vanished cannot run anything: forget it so
        // kubelet pulls it again rather than failing every container create.
        for (const l of record.layers) await stat(images.layerDir(l.chainId));
        images.setLoaded({ record, configDoc });
      } catch (err) {
        ctx.log.warn({ image: record.id, err: (err as Error).message }, 'image config or layers missing; dropping the image record');
        await images.records.delete(record.id.replace(/^sha256:/, ''));
      }
    }
    const r = await sweep();
    ctx.log.info({ images: images.all().length, ...r }, 'images recovered');
  };

  const pull = makePullImage(core);
  return {
    handlers: {
      PullImage: metrics
        ? (ctx, req) => timed(() => pull(ctx, req), (sec, err) => metrics.imagePull(sec, err === undefined ? undefined : pullFailureReason(err)))
        : pull,
      ImageStatus: makeImageStatus(core),
      ListImages: makeListImages(core),
      StreamImages: makeStreamImages(core),
      RemoveImage: makeRemoveImage(core),
      ImageFsInfo: makeImageFsInfo(core),
    },
    recover,
    // registries.conf and its drop-ins, from the paths the config names now; a file
    // that does not parse leaves the last good one in use (pulls re-read it anyway).
    reload: async () => {
      await loadConf();
    },
    close: () => client.close(),
    lookup: (ref) => {
      try {
        const img = images.resolve(ref, conf.unqualifiedSearch);
        return img ? images.toLocal(img) : undefined;
      } catch {
        return undefined;
      }
    },
    pullWatched: async (ctx, req, watch) => {
      if (req.image === '') throw invalidArgument('a pull needs the image reference, e.g. docker.io/library/busybox:latest');
      return puller.pull(ctx, req.image, credentialsFromAuth(req.auth), watch);
    },
    retain: (id, holder) => images.retain(id, holder),
    release: (id, holder) => images.release(id, holder),
  };
}

/** kubelet's typed pull failures travel as Unknown with a message prefix: that prefix is the reason. */
function pullFailureReason(err: unknown): string {
  if (err instanceof CricketError && err.code === 'Unknown') {
    const m = /^(RegistryUnavailable|SignatureValidationFailed)\b/.exec(err.message);
    if (m) return m[1]!;
  }
  return failureReason(err);
}
