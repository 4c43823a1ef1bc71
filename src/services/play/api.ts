/** The reconciler's face: what cricket.v1's Play RPCs (services/cricket/play.ts) use. */
export interface PlayResult {
  /** namespace/name of each pod played or removed. */
  pods: string[];
  /** Fields not supported, each with its file and line. */
  warnings: string[];
  /** Per pod: created, unchanged, recreated, deleted or skipped. */
  actions: string[];
}

export interface PlayedPod {
  name: string;
  namespace: string;
  ready: string;
  status: string;
  restarts: number;
  createdAt: number;
  sandboxId: string;
}

export interface Play {
  apply(text: string, file: string, logDir: string): Promise<PlayResult>;
  down(text: string, file: string): Promise<PlayResult>;
  status(): Promise<PlayedPod[]>;
}
