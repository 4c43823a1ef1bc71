import type { StreamServer } from '../../streams/stream-server.js';
import type { Area } from '../areas.js';

/** Issue 6: the streaming server and Exec/Attach/PortForward. */
export interface StreamingArea extends Area {
  /** The server's base URL once listening (tests, status). */
  readonly server: StreamServer;
}
