import type { PullLayerState, PullSnapshot } from './api.js';

/**
 * Bytes received so far per blob digest, shared by every pull: a download is shared
 * (one per digest), so a second pull naming the same layer sees the same count.
 */
export class ByteCounts {
  readonly #n = new Map<string, { n: number }>();

  /** Starts counting a download; the returned counter is bumped by the download. */
  open(digest: string): { n: number } {
    const c = { n: 0 };
    this.#n.set(digest, c);
    return c;
  }

  close(digest: string, c: { n: number }): void {
    if (this.#n.get(digest) === c) this.#n.delete(digest);
  }

  get(digest: string): number | undefined {
    return this.#n.get(digest)?.n;
  }
}

interface LayerEntry {
  digest: string;
  size: number;
  state: PullLayerState;
}

/**
 * The progress of one pull (one reference + credentials, shared by every caller
 * pulling it): the phase, and per layer its state; bytes come from ByteCounts while a
 * download runs. Read by snapshot() whenever a watcher wants a picture.
 *
 *   resolving ──(manifest + config in)──► layers ──(record written)──► done
 *   layer: waiting ─► downloading ─► unpacking ─► done      (or: exists, already local)
 */
export class PullTracker {
  #phase: PullSnapshot['phase'] = 'resolving';
  #layers: LayerEntry[] = [];
  readonly #bytes: ByteCounts;

  constructor(bytes: ByteCounts) {
    this.#bytes = bytes;
  }

  /** The layers of the manifest being pulled (again from scratch if a mirror failed over). */
  setLayers(layers: readonly { digest: string; size: number }[]): void {
    this.#phase = 'layers';
    this.#layers = layers.map((l) => ({ digest: l.digest, size: l.size, state: 'waiting' }));
  }

  mark(digest: string, state: PullLayerState): void {
    for (const l of this.#layers) if (l.digest === digest) l.state = state;
  }

  finish(): void {
    this.#phase = 'done';
  }

  snapshot(): PullSnapshot {
    const layers = this.#layers.map((l) => {
      const counted = this.#bytes.get(l.digest);
      const done = l.state === 'waiting' ? 0 : l.state === 'downloading' ? Math.min(counted ?? 0, l.size) : l.size;
      return { digest: l.digest, size: l.size, done, state: l.state };
    });
    return {
      phase: this.#phase,
      layers,
      totalBytes: layers.reduce((n, l) => n + l.size, 0),
      doneBytes: layers.reduce((n, l) => n + l.done, 0),
    };
  }
}
