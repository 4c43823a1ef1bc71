import type { Area, BaseDeps } from '../areas.js';
import type { ImagesArea } from '../images/area.js';
import type { ContainersArea } from '../containers/area.js';

/** Issue 4 fills this in: sandboxes, namespaces, CNI, pod RPCs. */
export interface PodsArea extends Area {
  attachContainers(containers: ContainersArea): void;
}

export async function createPods(_base: BaseDeps, _deps: { images: ImagesArea }): Promise<PodsArea> {
  return { handlers: {}, recover: async () => {}, close: async () => {}, attachContainers: () => {} };
}
