import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';

// Builds OCI images inside a test — tar layers, config and manifest JSON — and pushes
// them to a registry over the Distribution API. No docker, no umoci: every byte is
// known to the test, so fixtures (whiteouts, hostile paths, xattrs) are exact.

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';

const FIXED_MTIME = new Date('2024-01-01T00:00:00Z');

export interface LayerEntry {
  /** Path inside the layer, e.g. "bin/sh" (no leading slash needed; hostile fixtures may use any string). */
  path: string;
  type?: 'file' | 'directory' | 'symlink' | 'link' | 'character-device' | 'block-device' | 'fifo';
  content?: string | Buffer;
  mode?: number;
  uid?: number;
  gid?: number;
  /** symlink target or hardlink target path. */
  linkname?: string;
  mtime?: Date;
  devmajor?: number;
  devminor?: number;
  /** Written as PAX SCHILY.xattr.<name>; values must be ASCII/latin1-safe below 0x80. */
  xattrs?: Record<string, string>;
}

export interface LayerSpec {
  entries: LayerEntry[];
  compression?: 'gzip' | 'zstd' | 'none';
}

export interface BuiltLayer {
  mediaType: string;
  digest: string;
  diffId: string;
  size: number;
  blob: Buffer;
}

export interface ImageConfigOptions {
  Entrypoint?: string[];
  Cmd?: string[];
  Env?: string[];
  User?: string;
  WorkingDir?: string;
  StopSignal?: string;
  Labels?: Record<string, string>;
  Volumes?: Record<string, object>;
  ExposedPorts?: Record<string, object>;
}

export interface ImageOptions extends ImageConfigOptions {
  /** Files added to the base (busybox) layer. */
  extraFiles?: LayerEntry[];
  /** Layers stacked on top of the base layer, in order. */
  layers?: LayerSpec[];
  /** Compression of the base layer. */
  compression?: 'gzip' | 'zstd' | 'none';
  architecture?: string;
  os?: string;
  variant?: string;
  /** Docker schema2 media types instead of OCI ones. */
  docker?: boolean;
  /** More tags for the same manifest. */
  extraTags?: string[];
}

export interface PushedImage {
  /** host/repo:tag */
  ref: string;
  /** Manifest digest (what repo digests name). */
  digest: string;
  /** Config digest = the image id cricket reports. */
  configDigest: string;
  manifest: Record<string, unknown>;
  manifestBytes: Buffer;
  config: Record<string, unknown>;
  layers: BuiltLayer[];
}

export const sha256 = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** A tar stream of the given entries, in order. */
export async function buildTar(entries: LayerEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => {
    chunks.push(c as Buffer);
  });
  const done = new Promise<void>((resolve, reject) => {
    pack.on('end', () => resolve());
    pack.on('error', reject);
  });
  for (const e of entries) {
    const type = e.type ?? 'file';
    const header: Partial<tar.Header> & { name: string } = {
      name: e.path,
      type,
      mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644),
      uid: e.uid ?? 0,
      gid: e.gid ?? 0,
      mtime: e.mtime ?? FIXED_MTIME,
      ...(e.linkname !== undefined ? { linkname: e.linkname } : {}),
      devmajor: e.devmajor,
      devminor: e.devminor,
    };
    if (e.xattrs) {
      const pax: Record<string, string> = {};
      for (const [k, v] of Object.entries(e.xattrs)) pax[`SCHILY.xattr.${k}`] = v;
      header.pax = pax;
    }
    const content = type === 'file' ? Buffer.from(e.content ?? '') : undefined;
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null) => (err ? reject(err) : resolve());
      if (content) pack.entry(header, content, cb);
      else pack.entry(header, cb);
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

export async function buildLayer(spec: LayerSpec): Promise<BuiltLayer> {
  const raw = await buildTar(spec.entries);
  const compression = spec.compression ?? 'gzip';
  let blob: Buffer;
  let mediaType: string;
  if (compression === 'gzip') {
    blob = gzipSync(raw);
    mediaType = 'application/vnd.oci.image.layer.v1.tar+gzip';
  } else if (compression === 'zstd') {
    const r = spawnSync('zstd', ['-q', '-c', '-'], { input: raw, maxBuffer: 1 << 30 });
    if (r.status !== 0) throw new Error(`zstd failed: ${r.stderr?.toString()}`);
    blob = r.stdout;
    mediaType = 'application/vnd.oci.image.layer.v1.tar+zstd';
  } else {
    blob = raw;
    mediaType = 'application/vnd.oci.image.layer.v1.tar';
  }
  return { mediaType, digest: sha256(blob), diffId: sha256(raw), size: blob.length, blob };
}

let busyboxApplets: string[] | undefined;

/** The base rootfs: static busybox with its applets as symlinks, passwd/group, /tmp. */
export function busyboxEntries(): LayerEntry[] {
  busyboxApplets ??= execFileSync('/bin/busybox', ['--list'], { encoding: 'utf8' })
    .split('\n')
    .map((s) => s.trim())
    .filter((s) => /^[a-z0-9_.\[-]+$/.test(s) && s !== 'busybox');
  const entries: LayerEntry[] = [
    { path: 'bin/', type: 'directory' },
    { path: 'bin/busybox', content: readFileSync('/bin/busybox'), mode: 0o755 },
  ];
  for (const a of busyboxApplets) entries.push({ path: `bin/${a}`, type: 'symlink', linkname: 'busybox' });
  entries.push(
    { path: 'etc/', type: 'directory' },
    {
      path: 'etc/passwd',
      content: 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n',
    },
    { path: 'etc/group', content: 'root:x:0:\napp:x:1000:\nnogroup:x:65534:\n' },
    { path: 'home/', type: 'directory' },
    { path: 'home/app/', type: 'directory', uid: 1000, gid: 1000 },
    { path: 'root/', type: 'directory', mode: 0o700 },
    { path: 'tmp/', type: 'directory', mode: 0o1777 },
    { path: 'proc/', type: 'directory' },
    { path: 'sys/', type: 'directory' },
    { path: 'dev/', type: 'directory' },
    { path: 'usr/', type: 'directory' },
    { path: 'usr/bin/', type: 'directory' },
    { path: 'var/', type: 'directory' },
  );
  return entries;
}

async function check(res: Response, what: string): Promise<Response> {
  if (!res.ok) throw new Error(`${what}: HTTP ${res.status} ${await res.text()}`);
  return res;
}

/** Uploads a blob (monolithic) unless the registry has it. */
export async function pushBlob(host: string, repo: string, blob: Buffer, digest = sha256(blob)): Promise<string> {
  const head = await fetch(`http://${host}/v2/${repo}/blobs/${digest}`, { method: 'HEAD' });
  if (head.ok) return digest;
  const start = await check(await fetch(`http://${host}/v2/${repo}/blobs/uploads/`, { method: 'POST' }), `start upload to ${repo}`);
  await start.arrayBuffer();
  const loc = new URL(start.headers.get('location')!, `http://${host}`);
  loc.searchParams.set('digest', digest);
  const put = await check(
    await fetch(loc, { method: 'PUT', body: blob, headers: { 'content-type': 'application/octet-stream' } }),
    `upload ${digest} to ${repo}`,
  );
  await put.arrayBuffer();
  return digest;
}

export async function pushManifest(host: string, repo: string, ref: string, mediaType: string, body: Buffer): Promise<string> {
  const res = await check(
    await fetch(`http://${host}/v2/${repo}/manifests/${ref}`, { method: 'PUT', body, headers: { 'content-type': mediaType } }),
    `push manifest ${repo}:${ref}`,
  );
  await res.arrayBuffer();
  return sha256(body);
}

/** Pushes an image made of the given layers (lowest first) and run config. */
export async function pushImage(
  host: string,
  repo: string,
  tag: string,
  layers: BuiltLayer[],
  opts: ImageOptions = {},
): Promise<PushedImage> {
  const runConfig: Record<string, unknown> = {};
  for (const k of ['Entrypoint', 'Cmd', 'Env', 'User', 'WorkingDir', 'StopSignal', 'Labels', 'Volumes', 'ExposedPorts'] as const) {
    if (opts[k] !== undefined) runConfig[k] = opts[k];
  }
  runConfig['Env'] ??= ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'];
  const config: Record<string, unknown> = {
    created: FIXED_MTIME.toISOString(),
    architecture: opts.architecture ?? 'amd64',
    os: opts.os ?? 'linux',
    ...(opts.variant ? { variant: opts.variant } : {}),
    config: runConfig,
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: layers.map(() => ({ created: FIXED_MTIME.toISOString(), created_by: 'cricket test fixture' })),
  };
  const configBytes = Buffer.from(JSON.stringify(config));
  const configDigest = await pushBlob(host, repo, configBytes);
  for (const l of layers) await pushBlob(host, repo, l.blob, l.digest);
  const docker = opts.docker ?? false;
  const manifest = {
    schemaVersion: 2,
    mediaType: docker ? DOCKER_MANIFEST : OCI_MANIFEST,
    config: { mediaType: docker ? DOCKER_CONFIG : OCI_CONFIG, digest: configDigest, size: configBytes.length },
    layers: layers.map((l) => ({
      mediaType: docker ? l.mediaType.replace('application/vnd.oci.image.layer.v1.tar+gzip', 'application/vnd.docker.image.rootfs.diff.tar.gzip') : l.mediaType,
      digest: l.digest,
      size: l.size,
    })),
  };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  const digest = await pushManifest(host, repo, tag, manifest.mediaType, manifestBytes);
  for (const t of opts.extraTags ?? []) await pushManifest(host, repo, t, manifest.mediaType, manifestBytes);
  return { ref: `${host}/${repo}:${tag}`, digest, configDigest, manifest, manifestBytes, config, layers };
}

/**
 * The standard test image: static busybox with applet symlinks, /etc/passwd and
 * /etc/group (root, app uid 1000, nobody), /tmp. `opts` adds run config, files and layers.
 */
export async function pushBusyboxImage(host: string, repo: string, tag: string, opts: ImageOptions = {}): Promise<PushedImage> {
  const base = await buildLayer({ entries: [...busyboxEntries(), ...(opts.extraFiles ?? [])], compression: opts.compression });
  const extra: BuiltLayer[] = [];
  for (const spec of opts.layers ?? []) extra.push(await buildLayer(spec));
  return pushImage(host, repo, tag, [base, ...extra], opts);
}

export interface IndexEntry {
  image: PushedImage;
  platform: { architecture: string; os: string; variant?: string };
}

/** Pushes an OCI index (or Docker manifest list) over already pushed images of the same repo. */
export async function pushIndex(host: string, repo: string, tag: string, entries: IndexEntry[], docker = false): Promise<string> {
  const index = {
    schemaVersion: 2,
    mediaType: docker ? DOCKER_LIST : OCI_INDEX,
    manifests: entries.map((e) => ({
      mediaType: (e.image.manifest['mediaType'] as string) ?? OCI_MANIFEST,
      digest: e.image.digest,
      size: e.image.manifestBytes.length,
      platform: e.platform,
    })),
  };
  return pushManifest(host, repo, tag, index.mediaType, Buffer.from(JSON.stringify(index)));
}
