import { failedPrecondition, invalidArgument } from '../../core/errors.js';
import type { UnaryHandler } from '../../core/rpc.js';
import type { ImagesCore } from './images-deps.js';
import { candidates } from './image-store.js';
import { formatReference, parseReference } from '../../registry/reference.js';

/**
 * RemoveImage by id, tag or digest. Naming one tag of several only untags; an
 * unknown image is success (kubelet retries removals); an image a container uses
 * is refused with FailedPrecondition. Unreferenced blobs and layers go afterwards.
 */
export function makeRemoveImage(core: ImagesCore): UnaryHandler<'RemoveImage'> {
  return async (ctx, req) => {
    const input = (req.image?.image ?? '').trim();
    if (input === '') throw invalidArgument('RemoveImage needs image.image: an image id, tag or digest reference');
    const search = core.currentConf().unqualifiedSearch;
    const removed = await core.withRecords(async () => {
      const img = core.images.resolve(input, search);
      if (!img) return false;
      const tag = tagNamed(input, img.record.repoTags, search);
      if (tag !== undefined && img.record.repoTags.length > 1) {
        await core.images.persist({ ...img, record: { ...img.record, repoTags: img.record.repoTags.filter((t) => t !== tag) } });
        ctx.log.info({ image: img.record.id, tag }, 'image untagged');
        return false;
      }
      const holders = core.images.holders(img.record.id);
      if (holders.length > 0) {
        throw failedPrecondition(
          `image ${img.record.id} is in use by ${holders.length} container(s) (${holders.slice(0, 3).join(', ')}); remove them first`,
        );
      }
      await core.images.drop(img.record.id);
      ctx.log.info({ image: img.record.id, tags: img.record.repoTags }, 'image removed');
      return true;
    });
    if (removed) await core.collectGarbage();
    return {};
  };
}

/** The repo tag `input` names, if it is a tag reference (not an id or digest). */
function tagNamed(input: string, tags: readonly string[], search: readonly string[]): string | undefined {
  if (/^(?:sha256:)?[0-9a-f]{1,64}$/.test(input) && !tags.some((t) => t.includes(`/${input}:`))) return undefined;
  try {
    const ref = parseReference(input);
    if (ref.digest !== undefined) return undefined;
    return candidates(ref, search).map(formatReference).find((t) => tags.includes(t));
  } catch {
    return undefined;
  }
}
