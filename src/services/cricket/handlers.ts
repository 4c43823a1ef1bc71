import type { CricketHandlers } from '../../core/cricket-rpc.js';
import type { ImagesArea } from '../images/api.js';
import { makePullImageProgress } from './pull-image-progress.js';

/** The cricket.v1 RPCs: use cases over the areas' faces, served beside the CRI. */
export function buildCricketHandlers(d: { images: ImagesArea }): CricketHandlers {
  return { PullImageProgress: makePullImageProgress(d.images) };
}
