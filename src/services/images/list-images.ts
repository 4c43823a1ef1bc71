import type { ImageFilter } from '../../gen/runtime/v1/api.js';
import type { StreamHandler, UnaryHandler } from '../../core/rpc.js';
import type { ImagesCore } from './images-deps.js';
import type { StoredImage } from './image-store.js';
import { toCriImage } from './to-cri.js';

function select(core: ImagesCore, filter: ImageFilter | undefined): StoredImage[] {
  const want = filter?.image?.image ?? '';
  if (want === '') return core.images.all().sort((a, b) => a.record.pulledAt - b.record.pulledAt);
  const hit = core.images.resolve(want, core.currentConf().unqualifiedSearch);
  return hit ? [hit] : [];
}

export function makeListImages(core: ImagesCore): UnaryHandler<'ListImages'> {
  return async (_ctx, req) => ({ images: select(core, req.filter).map((i) => toCriImage(core, i)) });
}

const BATCH = 100;

/** StreamImages: the same answer as ListImages, in batches so a huge store stays under the message limit. */
export function makeStreamImages(core: ImagesCore): StreamHandler<'StreamImages'> {
  return async (_ctx, req, send) => {
    const all = select(core, req.filter);
    if (all.length === 0) return;
    for (let i = 0; i < all.length; i += BATCH) {
      await send({ images: all.slice(i, i + BATCH).map((img) => toCriImage(core, img)) });
    }
  };
}
