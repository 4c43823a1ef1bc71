import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { z } from 'zod';
import type { Logger } from 'pino';
import type { OpContext } from '../../core/context.js';
import { JsonRecordDir } from '../../store/json-record.js';
import type { EventBus } from '../events/event-bus.js';
import type { CriCall } from './cri-caller.js';
import { parseManifests, type PodManifest } from './manifest.js';
import { PodRunner, type PodRow } from './pod-runner.js';
import type { Play, PlayResult } from './api.js';

const RecordSchema = z.object({
  v: z.literal(1),
  uid: z.string(),
  logDir: z.string(),
  createdAt: z.number(),
  manifest: z.custom<PodManifest>((m) => typeof m === 'object' && m !== null && 'containers' in m),
});

/** The relist that catches what events missed (kubelet's generic PLEG, slowed down). */
export const RELIST_MS = 10_000;


/**
 * The pods `cricket play` hands to cricketd, kept running as kubelet keeps static
 * pods: one PodRunner per pod, woken by container events (the evented PLEG), by its
 * own back-off timers and by a slow relist. The manifests are records under
 * <root>/play/pods, so a restarted daemon picks its pods up again; pods it did not
 * make (kubelet's) are never touched: a runner only looks at sandboxes carrying its uid.
 */
export class Reconciler implements Play {
  readonly #records: JsonRecordDir<typeof RecordSchema>;
  readonly #volumesRoot: string;
  readonly #runners = new Map<string, PodRunner>();
  readonly #cri: CriCall;
  readonly #log: Logger;
  readonly #events: EventBus;
  #unsubscribe: (() => void) | undefined;
  #relist: NodeJS.Timeout | undefined;
  readonly #timers = new Set<NodeJS.Timeout>();
  #closed = false;

  constructor(o: { root: string; cri: CriCall; log: Logger; events: EventBus }) {
    this.#records = new JsonRecordDir(join(o.root, 'play', 'pods'), RecordSchema);
    this.#volumesRoot = join(o.root, 'play', 'volumes');
    this.#cri = o.cri;
    this.#log = o.log;
    this.#events = o.events;
  }

  /** Loads the kept manifests and starts watching; runs once the CRI areas have recovered. */
  async start(ctx: OpContext): Promise<void> {
    const { good, bad } = await this.#records.loadAll();
    for (const b of bad) ctx.log.warn({ record: b.key, reason: b.reason }, 'play: skipping unreadable pod record');
    for (const [key, rec] of good) this.#runners.set(key, this.#runner(rec.manifest, rec.uid, rec.createdAt, rec.logDir));
    // Container events name the container; pod events carry the pod's status.
    this.#unsubscribe = this.#events.subscribe((ev) => {
      const podId = ev.podSandboxStatus?.id;
      const ctrId = ev.containerId ?? '';
      for (const r of this.#runners.values()) {
        if ((podId !== undefined && podId !== '' && r.sandboxId === podId) || r.owns(ctrId)) void r.sync();
      }
    });
    this.#relist = setInterval(() => this.#syncAll(), RELIST_MS);
    this.#relist.unref();
    this.#syncAll();
    if (good.size > 0) ctx.log.info({ pods: good.size }, 'play: pods picked up again');
  }

  close(): void {
    this.#closed = true;
    this.#unsubscribe?.();
    if (this.#relist) clearInterval(this.#relist);
    for (const t of this.#timers) clearTimeout(t);
    for (const r of this.#runners.values()) r.stopProbes();
  }

  /** Plays a manifest file: new pods made, changed ones made again, equal ones left as they are. */
  async apply(text: string, file: string, logDir: string): Promise<PlayResult> {
    const { pods, warnings } = parseManifests(text, file);
    const names: string[] = [];
    for (const m of pods) {
      const key = keyOf(m);
      names.push(`${m.namespace}/${m.name}`);
      const old = this.#runners.get(key);
      if (old && JSON.stringify(old.manifest) === JSON.stringify(m)) {
        void old.sync();
        continue;
      }
      if (old) {
        this.#runners.delete(key);
        await old.down();
      }
      const uid = randomBytes(16).toString('hex');
      const createdAt = Date.now();
      await this.#records.put(key, { v: 1, uid, logDir, createdAt, manifest: m });
      const r = this.#runner(m, uid, createdAt, logDir);
      this.#runners.set(key, r);
      void r.sync();
    }
    return { pods: names, warnings };
  }

  /** Removes the pods a manifest file names (those it made; others are not its to remove). */
  async down(text: string, file: string): Promise<PlayResult> {
    const { pods, warnings } = parseManifests(text, file);
    const names: string[] = [];
    for (const m of pods) {
      const key = keyOf(m);
      const r = this.#runners.get(key);
      if (!r) continue;
      this.#runners.delete(key);
      await r.down();
      await this.#records.delete(key);
      names.push(`${m.namespace}/${m.name}`);
    }
    return { pods: names, warnings };
  }

  async status(): Promise<PodRow[]> {
    const rows: PodRow[] = [];
    for (const r of this.#runners.values()) rows.push(await r.row());
    return rows.sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
  }

  #runner(m: PodManifest, uid: string, createdAt: number, logDir: string): PodRunner {
    const runner: PodRunner = new PodRunner(m, uid, createdAt, logDir, {
      cri: this.#cri,
      log: this.#log,
      volumesDir: join(this.#volumesRoot, uid),
      wakeAt: (ms) => {
        if (this.#closed) return;
        const t = setTimeout(() => {
          this.#timers.delete(t);
          void runner.sync();
        }, Math.max(0, ms - Date.now()));
        t.unref();
        this.#timers.add(t);
      },
    });
    return runner;
  }

  #syncAll(): void {
    for (const r of this.#runners.values()) void r.sync();
  }
}

function keyOf(m: PodManifest): string {
  return `${m.namespace}_${m.name}`;
}
