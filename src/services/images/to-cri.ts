import type { DeepPartial, Image } from '../../gen/runtime/v1/api.js';
import type { ImagesCore } from './images-deps.js';
import { runConfigOf, userOf, type StoredImage } from './image-store.js';

/** The CRI Image message for a stored image. */
export function toCriImage(core: ImagesCore, img: StoredImage): DeepPartial<Image> {
  const r = img.record;
  const user = userOf(runConfigOf(img.configDoc));
  return {
    id: r.id,
    repoTags: [...r.repoTags],
    repoDigests: [...r.repoDigests],
    size: BigInt(r.size),
    ...(user.uid !== undefined ? { uid: { value: user.uid } } : {}),
    username: user.username,
    spec: { image: r.id, annotations: {} },
    pinned: isPinned(core, img),
  };
}

function isPinned(core: ImagesCore, img: StoredImage): boolean {
  const pins = core.config.images.pinned_images;
  if (pins.length === 0) return false;
  const search = core.currentConf().unqualifiedSearch;
  return pins.some((p) => {
    try {
      return core.images.resolve(p, search)?.record.id === img.record.id;
    } catch {
      return false;
    }
  });
}
