import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { CriCall } from './cri-caller.js';
import type { ContainerSpec, HookSpec, ProbeSpec } from './manifest-types.js';

export interface ProbeTarget {
  containerId: string;
  /** Where httpGet and tcpSocket go when the probe names no host: the pod IP, or 127.0.0.1 on the host network. */
  host: string;
}

/** One probe run: exec through ExecSync (exit 0), httpGet (200-399), tcpSocket (connects), each within timeoutSeconds. */
export async function probeOnce(cri: CriCall, p: ProbeSpec, t: ProbeTarget): Promise<boolean> {
  const ms = p.timeoutSeconds * 1000;
  if (p.exec) {
    const r = await cri('ExecSync', { containerId: t.containerId, cmd: p.exec.command, timeout: BigInt(p.timeoutSeconds) }).catch(() => undefined);
    return r?.exitCode === 0;
  }
  if (p.httpGet) {
    const g = p.httpGet;
    const mod = g.scheme === 'HTTPS' ? https : http;
    return new Promise((resolve) => {
      const req = mod.get({ host: g.host || t.host, port: g.port, path: g.path, timeout: ms, rejectUnauthorized: false, headers: { 'User-Agent': 'cricket-probe' } }, (res) => {
        res.resume();
        resolve((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 400);
      });
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve(false));
    });
  }
  if (p.tcpSocket) {
    const s = p.tcpSocket;
    return new Promise((resolve) => {
      const sock = net.connect({ host: s.host || t.host, port: s.port, timeout: ms }, () => {
        sock.destroy();
        resolve(true);
      });
      sock.on('timeout', () => sock.destroy());
      sock.on('error', () => resolve(false));
      sock.on('close', () => resolve(false));
    });
  }
  return false;
}

/** A lifecycle hook run to its end (exec, httpGet) or for its sleep, within timeoutSeconds; true if it succeeded. */
export async function runHook(cri: CriCall, h: HookSpec, t: ProbeTarget, timeoutSeconds: number): Promise<boolean> {
  if (h.sleepSeconds !== undefined) {
    await new Promise((r) => setTimeout(r, Math.min(h.sleepSeconds!, timeoutSeconds) * 1000));
    return true;
  }
  const base = { initialDelaySeconds: 0, periodSeconds: 1, successThreshold: 1, failureThreshold: 1, timeoutSeconds: Math.max(1, timeoutSeconds) };
  return probeOnce(cri, { ...base, ...(h.exec ? { exec: h.exec } : {}), ...(h.httpGet ? { httpGet: h.httpGet } : {}) }, t);
}

/**
 * The probes of one running container, as kubelet's prober runs them:
 *
 *   startup probe (if any) until one success ── failureThreshold failures: unhealthy
 *        │ then, side by side:
 *        ├─ liveness: failureThreshold failures in a row ─► unhealthy (the container is stopped)
 *        └─ readiness: successThreshold in a row ─► ready; failureThreshold in a row ─► not ready
 *
 * A container without a readiness probe is ready once started.
 */
export class ContainerProbes {
  readonly #spec: ContainerSpec;
  readonly #target: ProbeTarget;
  readonly #cri: CriCall;
  readonly #onUnhealthy: (why: string) => void;
  readonly #timers = new Set<NodeJS.Timeout>();
  #stopped = false;
  #ready: boolean;

  constructor(spec: ContainerSpec, target: ProbeTarget, d: { cri: CriCall; onUnhealthy: (why: string) => void }) {
    this.#spec = spec;
    this.#target = target;
    this.#cri = d.cri;
    this.#onUnhealthy = d.onUnhealthy;
    this.#ready = spec.readinessProbe === undefined && spec.startupProbe === undefined;
  }

  get ready(): boolean {
    return this.#ready;
  }

  start(): void {
    const s = this.#spec;
    if (s.startupProbe) {
      this.#loop(s.startupProbe, s.startupProbe.initialDelaySeconds, (ok, run) => {
        if (ok) {
          run.stop = true;
          this.#afterStartup();
        } else if (run.failures >= s.startupProbe!.failureThreshold) {
          run.stop = true;
          this.#onUnhealthy('startup probe failed');
        }
      });
    } else this.#afterStartup();
  }

  stop(): void {
    this.#stopped = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
  }

  #afterStartup(): void {
    const s = this.#spec;
    if (!s.readinessProbe) this.#ready = true;
    if (s.livenessProbe) {
      const lp = s.livenessProbe;
      this.#loop(lp, lp.initialDelaySeconds, (ok, run) => {
        if (!ok && run.failures >= lp.failureThreshold) {
          run.stop = true;
          this.#onUnhealthy('liveness probe failed');
        }
      });
    }
    if (s.readinessProbe) {
      const rp = s.readinessProbe;
      this.#loop(rp, rp.initialDelaySeconds, (ok, run) => {
        if (ok && run.successes >= rp.successThreshold) this.#ready = true;
        if (!ok && run.failures >= rp.failureThreshold) this.#ready = false;
      });
    }
  }

  /** Runs the probe every periodSeconds after the delay; `each` sees the counts of results in a row. */
  #loop(p: ProbeSpec, delaySeconds: number, each: (ok: boolean, run: { successes: number; failures: number; stop: boolean }) => void): void {
    const run = { successes: 0, failures: 0, stop: false };
    const tick = async () => {
      if (this.#stopped || run.stop) return;
      const ok = await probeOnce(this.#cri, p, this.#target);
      if (this.#stopped) return;
      if (ok) {
        run.successes++;
        run.failures = 0;
      } else {
        run.failures++;
        run.successes = 0;
      }
      each(ok, run);
      if (!run.stop) this.#after(p.periodSeconds * 1000, tick);
    };
    this.#after(delaySeconds * 1000, tick);
  }

  #after(ms: number, fn: () => Promise<void>): void {
    const t = setTimeout(() => {
      this.#timers.delete(t);
      void fn();
    }, ms);
    t.unref();
    this.#timers.add(t);
  }
}
