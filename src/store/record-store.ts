import { join } from 'node:path';
import type { z } from 'zod';
import { resolvePrefix } from '../core/ids.js';
import { JsonRecordDir } from './json-record.js';
import { Parking, type ParkOptions } from './parking.js';

/*
 * One resource (a pod sandbox, a container) is two records under the store's root:
 * meta/<id>.json, immutable facts written once, and status/<id>.json, rewritten on
 * every transition. Each write is atomic (json-record.ts), but the pair is not. An add
 * writes both at once, a remove unlinks both and then makes both unlinks durable at
 * once (their fsyncs share journal commits; one after the other cost 2–10 ms of every
 * RemoveContainer under I/O load here), so a crash in either may keep one record alone:
 *
 *                      add (both writes at once)
 *   (nothing) ──────────────────────────────────────────► META + STATUS ◄─┐ update
 *       ▲  ▲        a crash in an add or a remove              │  └───────┘
 *       │  │        may leave META alone or STATUS alone       │
 *       │  └───────── remove (both unlinks, then both syncs) ──┘
 *       └── load deletes STATUS alone
 *
 *   load:  META + STATUS  → loaded (a removal a crash undid entirely: the caller retries)
 *          META           → half-written: loaded with the kind's statusWhenMissing, or
 *                           reported for the area to undo (a create or a removal cut short)
 *          unreadable     → reported, left on disk, not loaded
 *          STATUS alone   → a removal cut short: deleted
 */

export interface Versioned {
  readonly v: number;
}

export interface RecordMeta extends Versioned {
  readonly id: string;
}

/** A resource as the store holds it in memory. */
export interface StoredRecord<M extends RecordMeta, S extends Versioned> {
  readonly meta: M;
  status: S;
}

/** What one area tells the store about its records. */
export interface RecordKind<M extends RecordMeta, S extends Versioned, R extends StoredRecord<M, S>> {
  /** In messages: "pod sandbox", "container". */
  readonly noun: string;
  /** Parses the current version; a schema that migrates older versions outputs the current one. */
  readonly metaSchema: z.ZodType<M>;
  readonly statusSchema: z.ZodType<S>;
  /** The in-memory record. May throw (an undecodable config): the record is then reported unreadable. */
  build(meta: M, status: S): R;
  /** The name a record holds from its reservation until its removal. */
  nameKey(meta: M): string;
  /** The AlreadyExists for a name another resource holds. */
  nameTaken(nameKey: string, holder: string): Error;
  /**
   * The status to load a meta with when its status record is missing or unreadable.
   * Without it such an id is reported as half-written for the area to undo.
   */
  statusWhenMissing?(meta: M): S;
}

export interface LoadResult<R> {
  readonly loaded: R[];
  /** Records that could not be read, parsed or built: left on disk, and not loaded. */
  readonly unreadable: { readonly id: string; readonly reason: string }[];
  /** Ids with a meta and no readable status, where the kind has no statusWhenMissing. */
  readonly halfWritten: string[];
}

/**
 * Durable records in memory and on disk, the name reservations taken before any side
 * effect (synchronous: no await between check and mark), id and prefix resolution,
 * and the parking of a create finished after its caller's deadline.
 */
export class RecordStore<M extends RecordMeta, S extends Versioned, R extends StoredRecord<M, S>> {
  readonly #kind: RecordKind<M, S, R>;
  readonly #meta: JsonRecordDir<z.ZodType<M>>;
  readonly #status: JsonRecordDir<z.ZodType<S>>;
  readonly #byId = new Map<string, R>();
  readonly #names = new Map<string, string>();
  readonly #parking = new Parking<string>();

  constructor(root: string, kind: RecordKind<M, S, R>) {
    this.#kind = kind;
    this.#meta = new JsonRecordDir(join(root, 'meta'), kind.metaSchema);
    this.#status = new JsonRecordDir(join(root, 'status'), kind.statusSchema);
  }

  /** Takes a name for id; the same id may take it again, any other id gets the kind's AlreadyExists. */
  reserveName(nameKey: string, id: string): void {
    const holder = this.#names.get(nameKey);
    if (holder !== undefined && holder !== id) throw this.#kind.nameTaken(nameKey, holder);
    this.#names.set(nameKey, id);
  }

  /** Frees a name if id holds it (anyone else's release is a no-op). */
  releaseName(nameKey: string, id: string): void {
    if (this.#names.get(nameKey) === id) this.#names.delete(nameKey);
  }

  /**
   * Writes both records, then makes the resource visible. The two writes go together
   * (their fsyncs share journal commits): a crash in them leaves META alone (undone or
   * loaded by the kind's rule) or STATUS alone (deleted at load), both of which load
   * handles, so their order buys nothing.
   */
  async add(r: R): Promise<void> {
    const [meta, status] = await Promise.allSettled([this.#meta.put(r.meta.id, r.meta), this.#status.put(r.meta.id, r.status)]);
    if (meta.status === 'rejected') throw meta.reason;
    if (status.status === 'rejected') throw status.reason;
    this.#byId.set(r.meta.id, r);
  }

  /** Writes the current status. */
  async update(r: R): Promise<void> {
    await this.#status.put(r.meta.id, r.status);
  }

  /** Deletes the records (status first), then forgets the resource, its name and its parking. */
  async remove(r: R): Promise<void> {
    const id = r.meta.id;
    await this.removeRecords(id);
    this.#byId.delete(id);
    const key = this.#kind.nameKey(r.meta);
    this.releaseName(key, id);
    this.#parking.drop(key, id);
  }

  /** Deletes the records only (status first): a create's rollback, a half-written record. */
  async removeRecords(id: string): Promise<void> {
    await Promise.all([this.#status.unlink(id), this.#meta.unlink(id)]);
    await Promise.all([this.#status.sync(), this.#meta.sync()]);
  }

  get(id: string): R | undefined {
    return this.#byId.get(id);
  }

  /** Full id or unambiguous prefix; an ambiguous one is InvalidArgument, an unknown one undefined. */
  resolve(idOrPrefix: string): R | undefined {
    const id = resolvePrefix(idOrPrefix, this.#byId.keys(), this.#kind.noun);
    return id === undefined ? undefined : this.#byId.get(id);
  }

  list(): R[] {
    return [...this.#byId.values()];
  }

  /** Reads every record into memory and restores the names they hold. */
  async load(): Promise<LoadResult<R>> {
    const metas = await this.#meta.loadAll();
    const statuses = await this.#status.loadAll();
    const unreadable = [...metas.bad, ...statuses.bad].map((b) => ({ id: b.key, reason: b.reason }));
    const loaded: R[] = [];
    const halfWritten: string[] = [];
    // A status whose meta file is gone (not merely unreadable): a removal cut short.
    const metaFiles = new Set([...metas.good.keys(), ...metas.bad.map((b) => b.key)]);
    for (const id of statuses.good.keys()) if (!metaFiles.has(id)) await this.#status.delete(id);
    for (const [id, meta] of metas.good) {
      const status = statuses.good.get(id) ?? this.#kind.statusWhenMissing?.(meta);
      if (status === undefined) {
        halfWritten.push(id);
        continue;
      }
      let r: R;
      try {
        r = this.#kind.build(meta, status);
      } catch (err) {
        unreadable.push({ id, reason: (err as Error).message.slice(0, 500) });
        continue;
      }
      this.#byId.set(id, r);
      this.#names.set(this.#kind.nameKey(meta), id);
      loaded.push(r);
    }
    return { loaded, unreadable, halfWritten };
  }

  /** Parks a create for kubelet's retry under its name key (see parking.ts). */
  park(nameKey: string, work: string | Promise<string>, opts?: ParkOptions<string>): void {
    this.#parking.park(nameKey, work, opts);
  }

  /** The parked create for this name key, now handed over, or undefined. */
  collect(nameKey: string): Promise<string> | undefined {
    return this.#parking.collect(nameKey);
  }
}
