import { createHash, randomBytes } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { Logger } from 'pino';
import type { OpContext } from '../../core/context.js';
import { JsonRecordDir } from '../../store/json-record.js';
import type { EventBus } from '../events/event-bus.js';
import type { CriCall } from './cri-caller.js';
import type { PodManifest } from './manifest-types.js';
import { PodRunner, type PodRow } from './pod-runner.js';
import type { Play, PlayResult } from './api.js';

// The manifest parser (and the yaml library under it) is loaded on the first play: a
// daemon nobody plays manifests to never carries it.
const loadParser = async () => (await import('./manifest.js')).parseManifests;

const RecordSchema = z.object({
  v: z.literal(1),
  uid: z.string(),
  logDir: z.string(),
  createdAt: z.number(),
  /** Who played it: "play" (cricket play) or the manifest_dir file it came from. */
  source: z.string().default('play'),
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
  /** Where each runner's manifest came from (the record's source). */
  readonly #sources = new Map<string, string>();
  readonly #manifestDir: string;
  readonly #dirLogDir: string;
  /** manifest_dir files as last played: path → hash of the text. */
  readonly #dirFiles = new Map<string, string>();
  #dirWatcher: FSWatcher | undefined;
  #dirScan: Promise<void> | undefined;
  #dirAgain = false;

  constructor(o: { root: string; cri: CriCall; log: Logger; events: EventBus; manifestDir?: string; dirLogDir?: string }) {
    this.#manifestDir = o.manifestDir ?? '';
    this.#dirLogDir = o.dirLogDir ?? '/var/log/pods';
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
    for (const [key, rec] of good) {
      this.#runners.set(key, this.#runner(rec.manifest, rec.uid, rec.createdAt, rec.logDir));
      this.#sources.set(key, rec.source);
    }
    // Container events name the container; pod events carry the pod's status.
    this.#unsubscribe = this.#events.subscribe((ev) => {
      const podId = ev.podSandboxStatus?.id;
      const ctrId = ev.containerId ?? '';
      for (const r of this.#runners.values()) {
        if ((podId !== undefined && podId !== '' && r.sandboxId === podId) || r.owns(ctrId)) void r.sync();
      }
    });
    this.#relist = setInterval(() => {
      this.#syncAll();
      this.#scanDir();
    }, RELIST_MS);
    this.#relist.unref();
    this.#syncAll();
    if (this.#manifestDir !== '') {
      try {
        this.#dirWatcher = watch(this.#manifestDir, { persistent: false }, () => this.#scanDir());
      } catch (err) {
        ctx.log.warn({ dir: this.#manifestDir, err: (err as Error).message }, 'play: manifest_dir cannot be watched; the relist reads it');
      }
      this.#scanDir();
    }
    if (good.size > 0) ctx.log.info({ pods: good.size }, 'play: pods picked up again');
  }

  close(): void {
    this.#closed = true;
    this.#dirWatcher?.close();
    this.#unsubscribe?.();
    if (this.#relist) clearInterval(this.#relist);
    for (const t of this.#timers) clearTimeout(t);
    for (const r of this.#runners.values()) r.stopProbes();
  }

  /** Plays a manifest file: new pods made, changed ones made again, equal ones left as they are. */
  async apply(text: string, file: string, logDir: string, source = 'play'): Promise<PlayResult> {
    const { pods, warnings } = (await loadParser())(text, file);
    const names: string[] = [];
    const actions: string[] = [];
    for (const m of pods) {
      const key = keyOf(m);
      names.push(`${m.namespace}/${m.name}`);
      const old = this.#runners.get(key);
      const owner = this.#sources.get(key);
      if (old && owner !== source && (owner !== 'play' || source !== 'play')) {
        // A pod of manifest_dir and one played by hand may not take each other over.
        warnings.push(`${file}: pod ${m.namespace}/${m.name} is already played from ${owner === 'play' ? 'cricket play' : owner}; left as it is`);
        actions.push('skipped');
        continue;
      }
      if (old && JSON.stringify(old.manifest) === JSON.stringify(m)) {
        void old.sync();
        actions.push('unchanged');
        continue;
      }
      actions.push(old ? 'recreated' : 'created');
      if (old) {
        this.#runners.delete(key);
        await old.down();
      }
      const uid = randomBytes(16).toString('hex');
      const createdAt = Date.now();
      await this.#records.put(key, { v: 1, uid, logDir, createdAt, source, manifest: m });
      const r = this.#runner(m, uid, createdAt, logDir);
      this.#runners.set(key, r);
      this.#sources.set(key, source);
      void r.sync();
    }
    return { pods: names, warnings, actions };
  }

  /** Removes the pods a manifest file names (those it made; others are not its to remove). */
  async down(text: string, file: string): Promise<PlayResult> {
    const { pods, warnings } = (await loadParser())(text, file);
    const names: string[] = [];
    const actions: string[] = [];
    for (const m of pods) {
      const key = keyOf(m);
      if (!this.#runners.has(key)) continue;
      if (this.#sources.get(key) !== 'play') {
        warnings.push(`${file}: pod ${m.namespace}/${m.name} comes from ${this.#sources.get(key)}; remove that file instead`);
        continue;
      }
      await this.#remove(key);
      names.push(`${m.namespace}/${m.name}`);
      actions.push('deleted');
    }
    return { pods: names, warnings, actions };
  }

  async #remove(key: string): Promise<void> {
    const r = this.#runners.get(key);
    if (!r) return;
    // Listed (Terminating) until its containers have had their grace period and the pod is gone.
    await r.down();
    if (this.#runners.get(key) === r) {
      this.#runners.delete(key);
      this.#sources.delete(key);
    }
    await this.#records.delete(key);
  }

  /** Reads manifest_dir again (one scan at a time; calls during one fold into one more). */
  #scanDir(): void {
    if (this.#manifestDir === '' || this.#closed) return;
    if (this.#dirScan) {
      this.#dirAgain = true;
      return;
    }
    this.#dirScan = (async () => {
      do {
        this.#dirAgain = false;
        await this.#scanDirOnce().catch((err: unknown) => this.#log.warn({ dir: this.#manifestDir, err: (err as Error).message }, 'play: manifest_dir scan failed'));
      } while (this.#dirAgain && !this.#closed);
    })().finally(() => (this.#dirScan = undefined));
  }

  /**
   * kubelet's static pods: each file's pods played (a file that does not parse keeps
   * what it had and is logged), pods gone from a file or with their file removed.
   */
  async #scanDirOnce(): Promise<void> {
    const names = (await readdir(this.#manifestDir).catch(() => [] as string[])).filter((n) => /\.ya?ml$/.test(n) && !n.startsWith('.'));
    const present = new Set<string>();
    for (const n of names) {
      const path = join(this.#manifestDir, n);
      present.add(path);
      const text = await readFile(path, 'utf8').catch(() => undefined);
      if (text === undefined) continue;
      const hash = createHash('sha256').update(text).digest('hex');
      if (this.#dirFiles.get(path) === hash) continue;
      try {
        const r = await this.apply(text, path, this.#dirLogDir, path);
        for (const w of r.warnings) this.#log.warn({ file: path }, `play: ${w}`);
        const keep = new Set(r.pods.map((p) => p.replace('/', '_')));
        for (const [key, src] of [...this.#sources]) if (src === path && !keep.has(key)) await this.#remove(key);
        this.#dirFiles.set(path, hash);
        this.#log.info({ file: path, pods: r.pods }, 'play: manifest_dir file played');
      } catch (err) {
        this.#log.warn({ file: path, err: (err as Error).message }, 'play: manifest_dir file not played');
        this.#dirFiles.set(path, hash);
      }
    }
    for (const [key, src] of [...this.#sources]) {
      if (src === 'play' || present.has(src)) continue;
      await this.#remove(key);
      this.#dirFiles.delete(src);
      this.#log.info({ file: src, pod: key }, 'play: manifest_dir file gone; pod removed');
    }
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
