import type { Area, BaseDeps } from '../areas.js';
import type { ContainersArea } from '../containers/area.js';
import type { PodsArea } from '../pods/area.js';

/** Issue 6 fills this in: the streaming server and Exec/Attach/PortForward. */
export interface StreamingArea extends Area {}

export async function createStreaming(
  _base: BaseDeps,
  _deps: { containers: ContainersArea; pods: PodsArea },
): Promise<StreamingArea> {
  return { handlers: {}, recover: async () => {}, close: async () => {} };
}
