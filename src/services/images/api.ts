import type { Area } from '../areas.js';
import type { OciImageRunConfig } from '../../oci/types.js';

export type { OciImageRunConfig };

/**
 * An image present in the local store, as the containers area needs it.
 * `id` is the config digest (sha256:…), which is also PullImage's image_ref.
 */
export interface LocalImage {
  readonly id: string;
  readonly repoTags: readonly string[];
  readonly repoDigests: readonly string[];
  /** Unpacked layer directories, lowest first (overlay lowerdir order is the reverse). */
  readonly layerDirs: readonly string[];
  /** The OCI image config's `config` object (User, Env, Entrypoint, Cmd, WorkingDir, StopSignal, Volumes, Labels, ...). */
  readonly config: Readonly<OciImageRunConfig>;
  readonly sizeBytes: number;
}

/** Issue 3: registry client, content store, unpack, image RPCs. */
export interface ImagesArea extends Area {
  /** Resolves an image reference (id, id prefix, digest reference, tag, or short name) to a local image. */
  lookup(ref: string): LocalImage | undefined;
  /** Marks an image as used by a holder (a container id) so RemoveImage refuses it. */
  retain(imageId: string, holder: string): void;
  release(imageId: string, holder: string): void;
}
