import type { SoakEnv } from './env.js';
import type { SoakRpc } from './rpc.js';

// The node-wide traffic kubelet makes besides its pod workers: the PLEG relist and the
// stats it polls every second, runtime Status and image-fs figures, image garbage
// collection (images pulled and removed while no pod uses them), and an evented-PLEG
// subscriber holding GetContainerEvents open.

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class NodeTraffic {
  stopping = false;
  rounds = 0;
  lateRounds = 0;
  pulls = 0;
  imageRemovals = 0;
  events = 0;
  eventStreams = 0;
  /** One controller per stream: CriClient.stream() leaves its abort listener on the signal. */
  #abort = new AbortController();

  constructor(
    private readonly rpc: SoakRpc,
    private readonly env: SoakEnv,
    private readonly imageEveryMs: number,
  ) {}

  stop(): void {
    this.stopping = true;
    this.#abort.abort();
  }

  async relist(): Promise<void> {
    while (!this.stopping) {
      const t0 = Date.now();
      const o = { timeoutMs: 30_000 };
      const calls: Promise<unknown>[] = [
        this.rpc.call('ListPodSandbox', {}, o),
        this.rpc.call('ListContainers', {}, o),
        this.rpc.call('ListContainerStats', {}, o),
        this.rpc.call('ListPodSandboxStats', {}, o),
      ];
      if (this.rounds % 5 === 0) calls.push(this.rpc.call('Status', {}, o));
      if (this.rounds % 10 === 0) calls.push(this.rpc.call('ImageFsInfo', {}, o), this.rpc.call('ListImages', {}, o));
      await Promise.allSettled(calls);
      this.rounds++;
      const took = Date.now() - t0;
      if (took > 1000) this.lateRounds++;
      await sleep(Math.max(0, 1000 - took));
    }
  }

  async images(): Promise<void> {
    for (let k = 0; !this.stopping; k++) {
      await sleep(this.imageEveryMs);
      if (this.stopping) break;
      const ref = this.env.extras[k % this.env.extras.length]!.ref;
      try {
        // Every third round two identical pulls at once (they share one download).
        const n = k % 3 === 2 ? 2 : 1;
        await Promise.all(Array.from({ length: n }, () => this.rpc.call('PullImage', { image: { image: ref } }, { retry: 'always' })));
        this.pulls += n;
        const st = await this.rpc.must('ImageStatus', { image: { image: ref } });
        if (!st.image) this.rpc.checkFailed('image-pulled', `ImageStatus after PullImage of ${ref}: no image`);
        await sleep(1000);
        await this.rpc.call('RemoveImage', { image: { image: ref } }, { retry: 'always' });
        this.imageRemovals++;
        const gone = await this.rpc.must('ImageStatus', { image: { image: ref } });
        if (gone.image) this.rpc.checkFailed('image-removed', `ImageStatus after RemoveImage of ${ref}: still there (${gone.image.id})`);
      } catch {
        // counted
      }
    }
  }

  /** An evented-PLEG style subscriber: one stream, reopened after each restart. */
  async containerEvents(): Promise<void> {
    while (!this.stopping) {
      await this.rpc
        .op(
          'GetContainerEvents',
          async (c) => {
            this.eventStreams++;
            this.#abort = new AbortController();
            const signal = this.#abort.signal;
            try {
              for await (const _ of c.stream('GetContainerEvents', {}, { signal })) this.events++;
            } catch (err) {
              if (signal.aborted) return;
              throw err;
            }
            // A daemon stopping (a Ctrl-C reaches it too) ends the stream: give our own signal handler a moment.
            if (!signal.aborted) await sleep(500);
            if (!signal.aborted) throw new Error('GetContainerEvents: the stream ended while the daemon was up');
          },
          { retry: 'provoked' },
        )
        .catch(() => sleep(1000));
    }
  }
}
