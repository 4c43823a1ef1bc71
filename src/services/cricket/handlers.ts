import type { CricketHandlers } from '../../core/cricket-rpc.js';
import type { ImagesArea } from '../images/api.js';
import type { Play } from '../play/api.js';
import { makePlayHandlers } from './play.js';
import { makePullImageProgress } from './pull-image-progress.js';

/** The cricket.v1 RPCs: use cases over the areas' faces and the reconciler, served beside the CRI. */
export function buildCricketHandlers(d: { images: ImagesArea; play: Play }): CricketHandlers {
  return { PullImageProgress: makePullImageProgress(d.images), ...makePlayHandlers(d.play) };
}
