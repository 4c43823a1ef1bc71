import type { Config } from '../../config/schema.js';
import type { ContentStore } from '../../content/content-store.js';
import type { ImageStore } from './image-store.js';
import type { Puller } from './puller.js';
import type { RegistriesConf } from '../../registry/registries-conf.js';

/** What the image RPCs share; built once by createImages(). */
export interface ImagesCore {
  readonly config: Readonly<Config>;
  readonly imagesDir: string;
  readonly content: ContentStore;
  readonly images: ImageStore;
  readonly puller: Puller;
  /** registries.conf as last read (lookups of short names use its search list). */
  currentConf(): RegistriesConf;
  /** Bumped by every change of records or stored data (for caches such as ImageFsInfo's). */
  generation(): number;
  /** Serialises changes to records (pull commit, remove, GC). */
  withRecords<T>(fn: () => Promise<T>): Promise<T>;
  /** Deletes blobs and layer dirs no image references; while pulls run, queues that for when they end. */
  collectGarbage(): Promise<{ blobs: number; layers: number }>;
}
