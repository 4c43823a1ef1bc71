import type { OpContext } from '../core/context.js';
import type { Handlers } from '../core/rpc.js';

/**
 * The daemon is four areas — images, pods (with networking), containers, streaming —
 * each built by its own create*() in services/<area>/area.ts. An area contributes its
 * RPC handlers, recovers its records at start, and offers a types-only face to the
 * areas built after it (its api.ts). Pods need containers (StopPodSandbox stops them),
 * so that one link is set after both exist: PodsArea.attachContainers().
 */
export interface Area {
  readonly handlers: Handlers;
  /** Reload durable records and reconcile with the host; runs before the daemon is ready. */
  recover(ctx: OpContext): Promise<void>;
  /** After a config reload (SIGHUP): re-read what the area loaded from files. Throws to report a file it keeps the old version of. */
  reload?(ctx: OpContext): Promise<void>;
  /** Daemon shutdown: stop background work. Never stops containers. */
  close(): Promise<void>;
}
