import type { Area, BaseDeps } from '../areas.js';

/** Issue 3 fills this in: registry client, content store, unpack, image RPCs. */
export interface ImagesArea extends Area {}

export async function createImages(_base: BaseDeps): Promise<ImagesArea> {
  return { handlers: {}, recover: async () => {}, close: async () => {} };
}
