import type { Area, BaseDeps } from '../areas.js';
import type { ImagesArea } from '../images/area.js';
import type { PodsArea } from '../pods/area.js';

/** Issue 5 fills this in: OCI spec, conmon + runc, logs, exec-sync, stats, events. */
export interface ContainersArea extends Area {}

export async function createContainers(_base: BaseDeps, _deps: { images: ImagesArea; pods: PodsArea }): Promise<ContainersArea> {
  return { handlers: {}, recover: async () => {}, close: async () => {} };
}
