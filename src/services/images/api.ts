import type { Area } from '../areas.js';
import type { OciImageRunConfig } from '../../oci/types.js';
import type { OpContext } from '../../core/context.js';
import type { AuthConfig } from '../../gen/runtime/v1/api.js';

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

/** A layer's place in a pull: see PullTracker (pull-tracker.ts) for the order. */
export type PullLayerState = 'waiting' | 'downloading' | 'unpacking' | 'done' | 'exists';

/** A picture of a pull in progress, taken whenever a watcher asks. */
export interface PullSnapshot {
  readonly phase: 'resolving' | 'layers' | 'done';
  readonly layers: readonly { digest: string; size: number; done: number; state: PullLayerState }[];
  readonly totalBytes: number;
  readonly doneBytes: number;
}

/** What PullImage takes, as the cricket.v1 progress RPC passes it on. */
export interface PullRequest {
  readonly image: string;
  readonly auth?: AuthConfig | undefined;
}

/** Issue 3: registry client, content store, unpack, image RPCs. */
export interface ImagesArea extends Area {
  /** Resolves an image reference (id, id prefix, digest reference, tag, or short name) to a local image. */
  lookup(ref: string): LocalImage | undefined;
  /** Marks an image as used by a holder (a container id) so RemoveImage refuses it. */
  retain(imageId: string, holder: string): void;
  release(imageId: string, holder: string): void;
  /**
   * PullImage with a window on its progress: `watch` gets the pull's tracker at once
   * (a pull of the same reference already running is joined, and so is its tracker).
   * Resolves with the image id.
   */
  pullWatched(ctx: OpContext, req: PullRequest, watch: (progress: { snapshot(): PullSnapshot }) => void): Promise<string>;
}
