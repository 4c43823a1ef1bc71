import { join } from 'node:path';
import { z } from 'zod';
import { invalidArgument } from '../../core/errors.js';
import { JsonRecordDir } from '../../store/json-record.js';
import type { LocalImage, OciImageRunConfig } from './api.js';
import { hexOf } from '../../content/content-store.js';
import { type ImageReference, parseReference, formatReference, repoName, withDomain } from '../../registry/reference.js';

const LayerRecord = z.object({
  digest: z.string(),
  mediaType: z.string(),
  size: z.number(),
  diffId: z.string(),
  chainId: z.string(),
});

export const ImageRecordSchema = z.object({
  v: z.literal(1),
  id: z.string(),
  repoTags: z.array(z.string()),
  repoDigests: z.array(z.string()),
  /** Manifest and index digests this image was pulled through (kept for GC). */
  manifestDigests: z.array(z.string()),
  configDigest: z.string(),
  layers: z.array(LayerRecord),
  size: z.number(),
  pulledAt: z.number(),
});

export type ImageRecord = z.output<typeof ImageRecordSchema>;
export type LayerRec = z.output<typeof LayerRecord>;

export interface StoredImage {
  record: ImageRecord;
  /** The full OCI image config document. */
  configDoc: Record<string, unknown>;
}

/**
 * The image records (one JSON file per image id) and their in-memory indexes by
 * tag and repo digest, plus who holds each image (containers), so lookups stay
 * synchronous for the containers area.
 */
export class ImageStore {
  readonly records: JsonRecordDir<typeof ImageRecordSchema>;
  readonly layersDir: string;
  readonly #images = new Map<string, StoredImage>();
  readonly #holders = new Map<string, Set<string>>();

  constructor(imagesDir: string) {
    this.records = new JsonRecordDir(join(imagesDir, 'records'), ImageRecordSchema);
    this.layersDir = join(imagesDir, 'layers');
  }

  layerDir(chainId: string): string {
    return join(this.layersDir, hexOf(chainId));
  }

  all(): StoredImage[] {
    return [...this.#images.values()];
  }

  get(id: string): StoredImage | undefined {
    return this.#images.get(id);
  }

  /** Memory only (recovery loads records; writers call persist()). */
  setLoaded(img: StoredImage): void {
    this.#images.set(img.record.id, img);
  }

  async persist(img: StoredImage): Promise<void> {
    await this.records.put(hexOf(img.record.id), img.record);
    this.#images.set(img.record.id, img);
  }

  /**
   * Forgets the image at once, then deletes its record: a lookup made after the
   * caller's holders check (same tick) misses it, so nobody starts using an image
   * whose layers the next sweep deletes. If the delete fails the image is back.
   */
  async drop(id: string): Promise<void> {
    const img = this.#images.get(id);
    this.#images.delete(id);
    try {
      await this.records.delete(hexOf(id));
    } catch (err) {
      if (img && !this.#images.has(id)) this.#images.set(id, img);
      throw err;
    }
  }

  /**
   * Finds an image by id, id prefix (hex, optionally sha256:), tag or digest
   * reference; a short name is tried as docker.io and then each search registry.
   */
  resolve(input: string, searchRegistries: readonly string[] = []): StoredImage | undefined {
    const s = input.trim();
    if (s === '') return undefined;
    const idish = /^(?:sha256:)?([0-9a-f]{1,64})$/.exec(s);
    if (idish) {
      const hex = idish[1]!;
      if (hex.length === 64) {
        const hit = this.#images.get(`sha256:${hex}`);
        if (hit) return hit;
      } else {
        const matches = this.all().filter((i) => hexOf(i.record.id).startsWith(hex));
        if (matches.length > 1) throw invalidArgument(`image id prefix "${hex}" is ambiguous: it matches ${matches.length} images`);
        if (matches.length === 1) return matches[0];
      }
      // A bare word of hex letters can also be a repository name ("cafe"): fall through.
      if (s.startsWith('sha256:')) return undefined;
    }
    const cands = candidatesOf(s, searchRegistries);
    if (!cands) return undefined;
    for (const cand of cands) {
      const hit = this.#byReference(cand);
      if (hit) return hit;
    }
    return undefined;
  }

  #byReference(ref: ImageReference): StoredImage | undefined {
    if (ref.digest !== undefined) {
      const want = `${repoName(ref)}@${ref.digest}`;
      return this.all().find((i) => i.record.repoDigests.includes(want) || i.record.id === ref.digest);
    }
    const want = formatReference(ref);
    return this.all().find((i) => i.record.repoTags.includes(want));
  }

  retain(id: string, holder: string): void {
    const set = this.#holders.get(id) ?? new Set<string>();
    set.add(holder);
    this.#holders.set(id, set);
  }

  release(id: string, holder: string): void {
    const set = this.#holders.get(id);
    if (!set) return;
    set.delete(holder);
    if (set.size === 0) this.#holders.delete(id);
  }

  holders(id: string): string[] {
    return [...(this.#holders.get(id) ?? [])];
  }

  toLocal(img: StoredImage): LocalImage {
    const r = img.record;
    return {
      id: r.id,
      repoTags: [...r.repoTags],
      repoDigests: [...r.repoDigests],
      layerDirs: r.layers.map((l) => this.layerDir(l.chainId)),
      config: runConfigOf(img.configDoc),
      sizeBytes: r.size,
    };
  }
}

/** A short name means docker.io, or each unqualified-search registry in order. */
// kubelet asks ImageStatus about the same few references all the time: their parse and
// search candidates (pure functions of the text and the search list) are kept, bounded.
const CANDIDATES_MAX = 1024;
const candidateCache = new Map<string, readonly ImageReference[] | null>();

/** The references `input` may mean, or null when it does not parse. */
function candidatesOf(input: string, searchRegistries: readonly string[]): readonly ImageReference[] | null {
  const key = `${input}\0${searchRegistries.join('\0')}`;
  let hit = candidateCache.get(key);
  if (hit !== undefined) return hit;
  try {
    hit = candidates(parseReference(input), searchRegistries);
  } catch {
    hit = null;
  }
  if (candidateCache.size >= CANDIDATES_MAX) candidateCache.clear();
  candidateCache.set(key, hit);
  return hit;
}

export function candidates(ref: ImageReference, searchRegistries: readonly string[]): ImageReference[] {
  if (!ref.shortName) return [ref];
  const out = [ref];
  for (const reg of searchRegistries) {
    const c = withDomain(ref, reg);
    if (!out.some((o) => formatReference(o) === formatReference(c))) out.push(c);
  }
  return out;
}

export function runConfigOf(doc: Record<string, unknown>): OciImageRunConfig {
  const c = doc['config'];
  return c && typeof c === 'object' ? (c as OciImageRunConfig) : {};
}

/** uid or username from the config's USER, as containerd reports them. */
export function userOf(config: OciImageRunConfig): { uid?: bigint; username: string } {
  const user = (config.User ?? '').split(':')[0]!;
  if (user === '') return { username: '' };
  if (/^\d+$/.test(user)) return { uid: BigInt(user), username: '' };
  return { username: user };
}
