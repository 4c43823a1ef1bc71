import { invalidArgument } from '../../core/errors.js';
import type { UnaryHandler } from '../../core/rpc.js';
import type { ImagesCore } from './images-deps.js';
import { credentialsFromAuth } from '../../registry/registry-client.js';

/** PullImage: image_ref is the image id (config digest), as ImageStatus and ListImages report it. */
export function makePullImage(core: ImagesCore): UnaryHandler<'PullImage'> {
  return async (ctx, req) => {
    const image = req.image?.image ?? '';
    if (image === '') throw invalidArgument('PullImage needs image.image: the reference to pull, e.g. docker.io/library/busybox:latest');
    const id = await core.puller.pull(ctx, image, credentialsFromAuth(req.auth));
    return { imageRef: id };
  };
}
