import type { UnaryHandler } from '../../core/rpc.js';
import type { ImagesCore } from './images-deps.js';
import { toCriImage } from './to-cri.js';

/** ImageStatus: a missing image is an empty response, not an error (kubelet pulls on it). */
export function makeImageStatus(core: ImagesCore): UnaryHandler<'ImageStatus'> {
  return async (_ctx, req) => {
    const img = core.images.resolve(req.image?.image ?? '', core.currentConf().unqualifiedSearch);
    if (!img) return {};
    const info: Record<string, string> = {};
    if (req.verbose) {
      info['info'] = JSON.stringify({
        id: img.record.id,
        manifestDigests: img.record.manifestDigests,
        chainIds: img.record.layers.map((l) => l.chainId),
        layerDirs: img.record.layers.map((l) => core.images.layerDir(l.chainId)),
        imageSpec: img.configDoc,
      });
    }
    return { image: toCriImage(core, img), info };
  };
}
