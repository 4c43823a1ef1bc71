import type { CricketHandlers } from '../../core/cricket-rpc.js';
import { abortError, invalidArgument } from '../../core/errors.js';
import type { ImagesArea, PullSnapshot } from '../images/api.js';

/** How often a pull's picture is sent: often enough for a live line, rare enough to cost nothing. */
export const PROGRESS_INTERVAL_MS = 250;

/**
 * cricket.v1 PullImageProgress: PullImage (same request, same shared download) that
 * sends a picture of the pull every PROGRESS_INTERVAL_MS while it runs, and a last one
 * with image_ref set. A client going away leaves the pull to any other caller of it.
 */
export function makePullImageProgress(images: Pick<ImagesArea, 'pullWatched'>): NonNullable<CricketHandlers['PullImageProgress']> {
  return async (ctx, req, send) => {
    const image = req.image?.image ?? '';
    if (image === '') throw invalidArgument('PullImageProgress needs image.image: the reference to pull, e.g. docker.io/library/busybox:latest');
    let view: { snapshot(): PullSnapshot } | undefined;
    let settled = false;
    const pulled = images.pullWatched(ctx, { image, auth: req.auth }, (v) => (view = v)).finally(() => (settled = true));
    pulled.catch(() => {}); // observed below; a tick may pass first
    while (!settled) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(done, PROGRESS_INTERVAL_MS);
        function done() {
          clearTimeout(timer);
          ctx.signal.removeEventListener('abort', onAbort);
          resolve();
        }
        function onAbort() {
          clearTimeout(timer);
          reject(abortError(ctx.signal, 'pull'));
        }
        ctx.signal.addEventListener('abort', onAbort, { once: true });
        pulled.then(done, done);
      });
      if (!settled && view) await send(toMessage(view.snapshot()));
    }
    const imageRef = await pulled;
    await send({ ...toMessage(view?.snapshot()), phase: 'done', imageRef });
  };
}

function toMessage(s: PullSnapshot | undefined) {
  if (!s) return { phase: 'done' };
  return {
    phase: s.phase,
    totalBytes: BigInt(s.totalBytes),
    doneBytes: BigInt(s.doneBytes),
    layers: s.layers.map((l) => ({ digest: l.digest, size: BigInt(l.size), done: BigInt(l.done), state: l.state })),
  };
}
