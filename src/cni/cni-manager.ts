import { existsSync } from 'node:fs';
import { z } from 'zod';
import type { OpContext } from '../core/context.js';
import { failedPrecondition, wrap } from '../core/errors.js';
import { JsonRecordDir } from '../store/json-record.js';
import type { CniConfigSource, CniNetworkConfig } from './cni-config-loader.js';
import { execPlugin, type PluginCall } from './cni-exec.js';
import { podIpsFromResult, versionAtLeast, type CniResult } from './cni-result.js';

/** The interface name inside the pod, as kubelet-era runtimes use. */
export const POD_IFNAME = 'eth0';

export interface AttachRequest {
  podId: string;
  netnsPath: string;
  /** CNI_ARGS: K8S_POD_NAMESPACE, K8S_POD_NAME, K8S_POD_INFRA_CONTAINER_ID, K8S_POD_UID. */
  args: Record<string, string>;
  /** portMappings, bandwidth, ips, dns — only those the plugins declare are passed. */
  capabilityArgs: Record<string, unknown>;
}

export interface Attachment {
  network: string;
  ips: string[];
  result: CniResult;
}

// What DEL needs after a restart: the exact config list and arguments ADD used
// (the config dir may have changed since) and ADD's result for prevResult.
const CacheSchema = z.object({
  v: z.literal(1),
  podId: z.string(),
  netnsPath: z.string(),
  ifName: z.string(),
  list: z.object({ cniVersion: z.string(), name: z.string(), plugins: z.array(z.record(z.string(), z.unknown())) }).passthrough(),
  args: z.record(z.string(), z.string()),
  capabilityArgs: z.record(z.string(), z.unknown()),
  result: z.record(z.string(), z.unknown()).nullable(),
});
type CacheEntry = z.output<typeof CacheSchema>;

export interface CniManagerOptions {
  source: CniConfigSource;
  binDirs: readonly string[];
  cacheDir: string;
  timeoutMs: number;
}

/**
 * Runs a network configuration list per the CNI spec: ADD through the plugins in
 * order, each getting the previous result; DEL in reverse with the cached result;
 * CHECK from 0.4.0; GC and STATUS from 1.1.0.
 */
export class CniManager {
  readonly #opts: CniManagerOptions;
  readonly #cache: JsonRecordDir<typeof CacheSchema>;

  constructor(opts: CniManagerOptions) {
    this.#opts = opts;
    // Whole after a daemon crash (renamed into place), not fsynced: libcni, which
    // containerd and CRI-O use, writes its result cache with a plain write too, and two
    // fsync pairs on every pod start cost 1–10 ms here under I/O load.
    this.#cache = new JsonRecordDir(opts.cacheDir, CacheSchema, { sync: false });
  }

  /** The network config pods get now, or FailedPrecondition saying why there is none. */
  network(): CniNetworkConfig {
    const s = this.#opts.source.current();
    if (!s.ready) throw failedPrecondition(`pod network is not ready: ${s.message}`);
    return s.config;
  }

  async setUp(ctx: OpContext, req: AttachRequest): Promise<Attachment> {
    const net = this.network();
    const entry: CacheEntry = {
      v: 1,
      podId: req.podId,
      netnsPath: req.netnsPath,
      ifName: POD_IFNAME,
      list: net.list,
      args: req.args,
      capabilityArgs: req.capabilityArgs,
      result: null,
    };
    // Written before ADD so a crash mid-ADD still lets a later DEL release what was taken.
    await this.#cache.put(req.podId, entry);
    let prev: CniResult | undefined;
    try {
      for (const plugin of net.list.plugins) {
        const out = await execPlugin(this.#call(entry, 'ADD', plugin, prev, ctx.signal));
        prev = out ?? prev;
      }
    } catch (err) {
      // The spec asks for DEL after a failed ADD so plugins release partial state. The
      // caller's signal may be what failed (deadline): cleanup gets its own time budget.
      // If DEL fails too, the cache entry stays: a later tearDown (the caller's rollback,
      // or recovery at the next start) retries it rather than leaking the IP.
      await this.#del(cleanupContext(ctx, this.#opts.timeoutMs), entry).then(
        () => this.#cache.delete(req.podId),
        (e: unknown) => ctx.log.warn({ err: e, pod: req.podId }, 'CNI DEL after failed ADD failed'),
      );
      throw wrap(err, `set up pod network "${net.name}"`);
    }
    const result = prev ?? {};
    await this.#cache.put(req.podId, { ...entry, result });
    return { network: net.name, ips: podIpsFromResult(result), result };
  }

  /** DEL with what ADD used; nothing cached means nothing to tear down. Idempotent. */
  async tearDown(ctx: OpContext, podId: string): Promise<void> {
    const entry = await this.#cache.get(podId);
    if (!entry) return;
    try {
      await this.#del(ctx, entry);
    } catch (err) {
      throw wrap(err, `tear down pod network "${entry.list.name}"`);
    }
    await this.#cache.delete(podId);
  }

  /** CHECK (0.4.0+): the plugins confirm the pod's network is as ADD left it. */
  async check(ctx: OpContext, podId: string): Promise<void> {
    const entry = await this.#cache.get(podId);
    if (!entry || !entry.result) throw failedPrecondition(`pod ${podId} has no network attachment to check`);
    if (!versionAtLeast(entry.list.cniVersion, '0.4.0')) return;
    for (const plugin of entry.list.plugins) await execPlugin(this.#call(entry, 'CHECK', plugin, entry.result, ctx.signal));
  }

  /** GC (1.1.0+): plugins release anything not belonging to the listed live attachments. */
  async gc(ctx: OpContext, livePodIds: readonly string[]): Promise<void> {
    const s = this.#opts.source.current();
    if (!s.ready || !versionAtLeast(s.config.cniVersion, '1.1.0')) return;
    const valid = livePodIds.map((id) => ({ containerID: id, ifname: POD_IFNAME }));
    for (const plugin of s.config.list.plugins) {
      await execPlugin({
        command: 'GC',
        plugin,
        networkName: s.config.name,
        cniVersion: s.config.cniVersion,
        extra: { 'cni.dev/valid-attachments': valid },
        binDirs: this.#opts.binDirs,
        signal: ctx.signal,
        timeoutMs: this.#opts.timeoutMs,
      });
    }
  }

  /** STATUS (1.1.0+): whether the plugins can take ADDs; older versions are assumed ready. */
  async status(ctx: OpContext): Promise<void> {
    const net = this.network();
    if (!versionAtLeast(net.cniVersion, '1.1.0')) return;
    for (const plugin of net.list.plugins) {
      await execPlugin({
        command: 'STATUS',
        plugin,
        networkName: net.name,
        cniVersion: net.cniVersion,
        binDirs: this.#opts.binDirs,
        signal: ctx.signal,
        timeoutMs: this.#opts.timeoutMs,
      });
    }
  }

  /** Pods with a cached attachment (including ADDs interrupted by a crash). */
  async cachedPodIds(): Promise<string[]> {
    const { good, bad } = await this.#cache.loadAll();
    return [...good.keys(), ...bad.map((b) => b.key)];
  }

  async hasAttachment(podId: string): Promise<boolean> {
    return (await this.#cache.get(podId)) !== undefined;
  }

  async #del(ctx: OpContext, entry: CacheEntry): Promise<void> {
    // prevResult on DEL arrived with 0.4.0; older plugins must not get it.
    const prev = versionAtLeast(entry.list.cniVersion, '0.4.0') ? (entry.result ?? undefined) : undefined;
    let firstErr: unknown;
    for (const plugin of [...entry.list.plugins].reverse()) {
      try {
        await execPlugin(this.#call(entry, 'DEL', plugin, prev, ctx.signal));
      } catch (err) {
        // Keep going so one stuck plugin does not keep the others' resources; report the first.
        firstErr ??= err;
      }
    }
    if (firstErr !== undefined) throw firstErr;
  }

  #call(entry: CacheEntry, command: 'ADD' | 'DEL' | 'CHECK', plugin: Record<string, unknown>, prev: CniResult | undefined, signal: AbortSignal): PluginCall {
    return {
      command,
      plugin,
      networkName: entry.list.name,
      cniVersion: entry.list.cniVersion,
      containerId: entry.podId,
      // After a reboot or an unpin the namespace is gone; plugins then release host-side state only.
      netns: command === 'DEL' && !existsSync(entry.netnsPath) ? undefined : entry.netnsPath,
      ifName: entry.ifName,
      args: entry.args,
      prevResult: prev,
      capabilityArgs: entry.capabilityArgs,
      binDirs: this.#opts.binDirs,
      signal,
      timeoutMs: this.#opts.timeoutMs,
    };
  }
}

/** A context for undoing work after the caller's deadline passed: same logger, fresh time budget. */
export function cleanupContext(ctx: OpContext, timeoutMs: number): OpContext {
  return { requestId: ctx.requestId, log: ctx.log, span: ctx.span, signal: AbortSignal.timeout(timeoutMs) };
}
