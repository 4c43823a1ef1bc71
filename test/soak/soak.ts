import { status } from '@grpc/grpc-js';
import { copyFileSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CriCallError } from '../../src/client/cri-client.js';
import { ContainerState } from '../../src/gen/runtime/v1/api.js';
import type { TestDaemon } from '../helpers/daemon.js';
import { prng } from '../helpers/prng.js';
import { conmons, inventory, type Inventory } from '../integration/durability-env.js';
import { SoakEnv } from './env.js';
import { PodChurn } from './pods.js';
import { curve, growth, median, mib, mibB, minimum, rpcTable, signedPct, table, type Growth, type Sample } from './report.js';
import { SoakRpc } from './rpc.js';
import { clearReports, sampleProcess } from './sampler.js';
import { NodeTraffic } from './traffic.js';

// `make soak`: kubelet-shaped churn against one cricketd for SOAK_MINUTES, with a
// SIGKILL + restart of the daemon every SOAK_KILL_SECONDS, then a check that nothing
// leaked. Prints a status line every 30 s and a summary at the end; exits non-zero
// when a criterion fails. See DEVELOPERS.md for the knobs.

const num = (name: string, def: number) => {
  const v = process.env[name];
  if (v === undefined || v === '') return def;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name}=${v}: want a non-negative number`);
  return n;
};
const P = {
  minutes: num('SOAK_MINUTES', 30),
  killEverySec: num('SOAK_KILL_SECONDS', 240),
  pods: num('SOAK_PODS', 50),
  parallel: num('SOAK_PARALLEL', 10),
  lifeSec: num('SOAK_POD_LIFETIME_SECONDS', 60),
  actionsPerSec: num('SOAK_ACTIONS_PER_SECOND', 4),
  imageEverySec: num('SOAK_IMAGE_SECONDS', 10),
  warmSec: num('SOAK_WARMUP_SECONDS', 60),
  winSec: num('SOAK_WINDOW_SECONDS', 60),
  sampleSec: num('SOAK_SAMPLE_SECONDS', 10),
  maxGrowthPct: num('SOAK_MAX_GROWTH_PERCENT', 10),
  seed: num('SOAK_SEED', Math.floor(Math.random() * 2 ** 31)),
};
const MAX_PODS = num('SOAK_MAX_PODS', Math.ceil(P.minutes * 600)); // a bound on count, far above what the time allows
const ACTORS = 3;
const FD_SLACK = 4;

const t0 = Date.now();
const clock = () => {
  const s = Math.floor((Date.now() - t0) / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
};
const say = (msg: string) => process.stdout.write(`[soak ${clock().padStart(5)}] ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let interrupted = 0;
let onInterrupt: () => void = () => {};
let onSecondInterrupt: () => void = () => {};
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    interrupted++;
    if (interrupted === 1) {
      say(`${sig}: stopping the churn, removing the pods, cleaning up (again to skip the removal)`);
      onInterrupt();
    } else if (interrupted === 2) {
      say(`${sig} again: skipping the removal, sweeping the host`);
      onSecondInterrupt();
    } else process.exit(130);
  });
}

async function main(): Promise<number> {
  say(
    `cricket soak: ${P.minutes} min, ${P.pods} pods at ${P.parallel}-way, lifetime ~${P.lifeSec} s, ` +
      `${P.actionsPerSec} pod actions/s, image pull+remove every ${P.imageEverySec} s, ` +
      `SIGKILL every ${P.killEverySec > 0 ? `~${P.killEverySec} s` : '(never)'}, seed ${P.seed}`,
  );
  const env = await SoakEnv.create();
  let sweep: Promise<void> | undefined;
  const doSweep = () => (sweep ??= env.sweep());
  try {
    return await run(env);
  } finally {
    await doSweep();
    say('swept: daemon stopped, registry stopped, bridge, cgroups and temp dirs removed');
  }
}

async function run(env: SoakEnv): Promise<number> {
  const rnd = prng(P.seed);
  let d: TestDaemon = await env.startDaemon();
  const rpc = new SoakRpc(d.client, t0);
  await waitRecovered(d, rpc);
  rpc.ready();
  const skeleton = new Set(env.fileTree());
  let epochStart = Date.now();
  let restarting = false;
  let finalStop = false;
  let unexpectedExits = 0;
  const restarts: { downMs: number; recoveryMs: number }[] = [];
  let chain: Promise<void> = Promise.resolve();
  let churn: PodChurn | undefined;

  // A daemon that will not start again ends the run (the host sweep still runs).
  let fatal = '';
  const startAgain = async (): Promise<TestDaemon> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await env.startDaemon();
      } catch (err) {
        rpc.failures.add('daemon restart', (err as Error).message.slice(0, 600));
        if (attempt === 3) throw err;
        await sleep(2000);
      }
    }
  };
  const restart = (kill: boolean) =>
    (chain = chain.then(async () => {
      if (fatal) return;
      restarting = true;
      const runningBefore = churn ? churn.liveContainers() : [];
      rpc.down();
      const tk = Date.now();
      if (kill) await env.kill();
      else d.client.close();
      clearReports(env.reportDir);
      d = await startAgain();
      watch(d);
      rpc.up(d.client);
      const tu = Date.now();
      await waitRecovered(d, rpc);
      rpc.ready();
      epochStart = Date.now();
      restarts.push({ downMs: tu - tk, recoveryMs: epochStart - tu });
      restarting = false;
      if (churn) await checkStillRunning(rpc, churn, runningBefore);
    }).catch((err: unknown) => {
      fatal = `cricketd did not start again: ${(err as Error).message.slice(0, 300)}`;
      say(fatal);
      onFatal();
    }));
  let onFatal: () => void = () => {};
  const watch = (dd: TestDaemon) =>
    dd.child.once('exit', (code, sig) => {
      if (restarting || finalStop || dd !== d) return;
      // A Ctrl-C reaches the daemon too (same process group): restart it to remove the pods.
      if (interrupted === 0) {
        unexpectedExits++;
        rpc.failures.add('daemon', `cricketd exited by itself (${code ?? sig}); log tail: ${dd.output().slice(-600)}`);
      }
      void restart(false);
    });
  watch(d);

  await rpc.call('PullImage', { image: { image: env.image!.ref } }, { retry: 'always' });
  churn = new PodChurn(rpc, env, { target: P.pods, parallel: P.parallel, lifeMs: P.lifeSec * 1000, maxPods: MAX_PODS, actionsPerSec: P.actionsPerSec }, rnd);
  const traffic = new NodeTraffic(rpc, env, P.imageEverySec * 1000);
  let stopping = false;
  let wake: () => void = () => {};
  const stopped = new Promise<void>((r) => (wake = r));
  const stopAll = () => {
    if (interrupted > 0) rpc.interrupted = true;
    stopping = true;
    churn.stopping = true;
    traffic.stop();
    wake();
  };
  onInterrupt = stopAll;
  let skipDrain = false;
  onSecondInterrupt = () => {
    skipDrain = true;
    rpc.abandon = true;
    stopAll();
  };
  onFatal = () => {
    onSecondInterrupt();
    rpc.up(d.client); // let waiting callers fail and see the end
  };
  const pause = (ms: number) => Promise.race([sleep(ms), stopped]);
  if (interrupted > 0) stopAll(); // a Ctrl-C during the set-up

  // Samples of the daemon, and the conmon ↔ container cross-check.
  const samples: Sample[] = [];
  const orphanStreak = new Map<string, number>();
  const missingStreak = new Map<string, number>();
  let conmonMismatchMax = 0;
  const sampler = async () => {
    while (!stopping) {
      await pause(P.sampleSec * 1000);
      if (stopping || restarting || rpc.recovering) continue;
      const epoch = rpc.epoch;
      const pid = env.nodePid();
      const proc = pid > 0 ? await sampleProcess(pid, env.reportDir) : undefined;
      if (!proc || epoch !== rpc.epoch || restarting) continue;
      const cm = conmons(env.dir);
      const list = await rpc.call('ListContainers', {}, { timeoutMs: 30_000, retry: 'never' }).catch(() => undefined);
      if (!list || epoch !== rpc.epoch) continue;
      const live = list.containers.filter((c) => c.state === ContainerState.CONTAINER_CREATED || c.state === ContainerState.CONTAINER_RUNNING);
      const liveIds = new Set(live.map((c) => c.id));
      const cmIds = new Set(cm.map((c) => c.id));
      conmonMismatchMax = Math.max(conmonMismatchMax, Math.abs(cm.length - live.length));
      streaks(orphanStreak, [...cmIds].filter((id) => !liveIds.has(id)), (id) => rpc.checkFailed('orphan-conmon', `conmon for ${id} alive for 30 s while the container is not listed as created/running`));
      streaks(missingStreak, live.filter((c) => c.state === ContainerState.CONTAINER_RUNNING && !cmIds.has(c.id)).map((c) => c.id), (id) =>
        rpc.checkFailed('conmon-missing', `container ${id} listed RUNNING for 30 s without a conmon`),
      );
      samples.push({ tMs: Date.now() - t0, epoch, ageMs: Date.now() - epochStart, proc, conmons: cm.length, liveContainers: live.length, pods: churn.pods.size });
    }
  };
  const statusLine = async () => {
    while (!stopping) {
      await pause(30_000);
      if (stopping) break;
      const s = samples[samples.length - 1];
      const tot = total(rpc);
      say(
        `pods ${churn.pods.size} (made ${churn.created}, removed ${churn.removed}) | calls ${tot.calls}, failed ${rpc.failures.total}, ` +
          `provoked ${tot.inflight} in flight + ${tot.unavailable} unavailable | restarts ${restarts.length}` +
          (s ? ` | rss ${mib(s.proc.rssKiB)} MiB, heap ${mibB(s.proc.heapUsed)} MiB (old ${mibB(s.proc.heapOld)}), fds ${s.proc.fds}, handles ${s.proc.handles}, conmon ${s.conmons}/${s.liveContainers} ctrs` : ''),
      );
    }
  };
  const killer = async () => {
    if (P.killEverySec <= 0) return;
    while (!stopping) {
      await pause(P.killEverySec * 1000 * (0.8 + 0.4 * rnd()));
      if (stopping) break;
      say(`SIGKILL cricketd (pid ${env.nodePid()}) with ${churn.pods.size} pods`);
      await restart(true);
      const r = restarts[restarts.length - 1]!;
      say(`cricketd back: socket after ${(r.downMs / 1000).toFixed(1)} s, recovered after ${(r.recoveryMs / 1000).toFixed(1)} s more`);
    }
  };

  const loops = [
    ...Array.from({ length: P.parallel }, () => churn.worker()),
    ...Array.from({ length: ACTORS }, () => churn.actor(ACTORS)),
    traffic.relist(),
    traffic.images(),
    traffic.containerEvents(),
    killer(),
    sampler(),
    statusLine(),
  ];
  await pause(P.minutes * 60_000);
  const churnEnd = Date.now();
  if (interrupted === 0) say('time is up: stopping the churn');
  stopAll();
  await Promise.race([Promise.allSettled(loops), sleep(180_000)]);
  await chain;

  // Drain: every pod the soak holds, then whatever else the daemon lists, then the images.
  let drainError = '';
  if (!skipDrain) {
    try {
      await Promise.race([
        finalDrain(rpc, churn, env),
        new Promise((_, reject) => setTimeout(() => reject(new Error('the final removal took over 10 minutes')), 600_000)),
        new Promise((_, reject) => (onSecondInterrupt = () => reject(new Error('interrupted')))),
      ]);
    } catch (err) {
      drainError = (err as Error).message;
    }
  }
  const drainedAt = Date.now();

  // What is left on the host, given a few seconds for asynchronous teardown.
  let inv = leftovers(env, skeleton);
  const atOnce = count(inv);
  for (let i = 0; i < 20 && count(inv) > 0 && !skipDrain; i++) {
    await sleep(500);
    inv = leftovers(env, skeleton);
  }
  finalStop = true;
  const tStop = Date.now();
  const exitCode = await Promise.race([d.stop(), sleep(20_000).then(() => 'timeout' as const)]);
  const stopMs = Date.now() - tStop;

  // The summary.
  const g = (m: Parameters<typeof growth>[1], stat = median) => growth(samples, m, P.warmSec * 1000, P.winSec * 1000, stat);
  const rss = g('rssKiB');
  const pss = g('pssKiB');
  const heap = g('heapOld', minimum);
  const heapAll = g('heapUsed', minimum);
  const fds = g('fds', minimum);
  const handles = g('handles', minimum);
  const tot = total(rpc);
  const errLines = daemonErrors(env.daemonLog);
  const out: string[] = [];
  out.push('', `== cricket soak summary (seed ${P.seed}) ==`);
  out.push(
    table(
      ['figure', 'value'],
      [
        ['churn', `${((churnEnd - t0) / 60_000).toFixed(1)} min, then drain ${((drainedAt - churnEnd) / 1000).toFixed(0)} s`],
        ['pods created / removed', `${churn.created} / ${churn.removed} (peak ${churn.peak} at once, ${churn.converged} re-converged after a kill, ${churn.createFailed} creates failed)`],
        ['pod actions', [...churn.actions.entries()].map(([k, v]) => `${k} ${v}`).join(', ')],
        ['StopContainer exit codes', [...churn.stopExitCodes.entries()].map(([k, v]) => `${k}: ${v}`).join(', ') || '-'],
        ['relist+stats rounds', `${traffic.rounds} (${traffic.lateRounds} took over 1 s)`],
        ['image pulls / removals', `${traffic.pulls} / ${traffic.imageRemovals}`],
        ['container events', `${traffic.events} on ${traffic.eventStreams} streams`],
        ['calls', `${tot.calls}: failed ${tot.failed}, provoked: ${tot.inflight} in flight at a SIGKILL, ${tot.unavailable} UNAVAILABLE during recovery`],
        ['daemon restarts', restarts.length === 0 ? 'none' : `${restarts.length}: socket back p50 ${(median(restarts.map((r) => r.downMs)) / 1000).toFixed(1)} s, recovery p50 ${(median(restarts.map((r) => r.recoveryMs)) / 1000).toFixed(1)} s, max ${(Math.max(...restarts.map((r) => r.recoveryMs)) / 1000).toFixed(1)} s`],
        ['daemon exits by itself', String(unexpectedExits)],
        ['samples', `${samples.length} (every ${P.sampleSec} s; warm-up ${P.warmSec} s, windows ${P.winSec} s)`],
        ['RSS MiB', growthText(rss, mib)],
        ['PSS MiB', growthText(pss, mib)],
        ['V8 heap MiB (old+code+large, floor)', growthText(heap, mibB)],
        ['V8 heap MiB (all spaces, floor)', growthText(heapAll, mibB)],
        ['open fds (floor)', growthText(fds, (v) => v.toFixed(0))],
        ['libuv handles (floor)', growthText(handles, (v) => v.toFixed(0))],
        ['RSS curve (MiB, per minute)', curve(samples, 'rssKiB', mib)],
        ['heap floor curve (MiB, per minute)', curve(samples, 'heapOld', mibB, minimum)],
        ['fd curve (per minute, median)', curve(samples, 'fds', (v) => v.toFixed(0))],
        ['conmon vs created+running', `max difference in a sample ${conmonMismatchMax} (churn in between); p50 conmon ${median(samples.map((s) => s.conmons))}, containers ${median(samples.map((s) => s.liveContainers))}`],
        ['daemon error log lines', errLines.total === 0 ? '0' : `${errLines.total}: ${errLines.top.join(' | ')}`],
        ['node warnings (stderr)', errLines.warnings === 0 ? '0' : `${errLines.warnings}: ${errLines.topWarnings.join(' | ')}`],
        ['final SIGTERM', exitCode === 'timeout' ? 'did not exit within 20 s' : `exit ${exitCode} after ${(stopMs / 1000).toFixed(1)} s`],
      ],
    ),
  );
  out.push('', rpcTable(rpc.tally));
  out.push('', `left on the host after every pod and image was removed (${atOnce} objects at once${atOnce > 0 ? `, ${count(inv)} after waiting up to 10 s` : ''}):`);
  out.push(table(['object', 'count', 'e.g.'], Object.entries(inv).map(([k, v]) => [k, v.length, v.slice(0, 3).join(' ').slice(0, 160)])));
  if (rpc.failures.byKey.size > 0) {
    out.push('', 'failures (grouped; first occurrence):');
    for (const [k, v] of rpc.failures.byKey) out.push(`  ${v.count}x at ${(v.firstAt / 1000).toFixed(0)} s  ${k.slice(0, 160)}\n      ${v.first.slice(0, 600)}`);
  }
  const crit: [string, boolean | undefined][] = [
    ['no failed RPC or check (provoked ones apart)', rpc.failures.total === 0],
    ['the daemon never died by itself', unexpectedExits === 0],
    ['the daemon always started again', fatal === ''],
    [`RSS growth ≤ ${P.maxGrowthPct}% (across restarts and within each)`, withinLimit(rss, P.maxGrowthPct)],
    [`V8 heap growth ≤ ${P.maxGrowthPct}%`, withinLimit(heap, P.maxGrowthPct)],
    ['open fds flat', fdsFlat(fds, P.maxGrowthPct)],
    ['nothing left on the host', count(inv) === 0 && drainError === ''],
    ['daemon stops cleanly on SIGTERM', exitCode === 0],
    ['not interrupted', interrupted === 0],
  ];
  out.push('', 'criteria:');
  for (const [name, ok] of crit) out.push(`  ${ok === undefined ? 'n/a ' : ok ? 'PASS' : 'FAIL'}  ${name}${ok === undefined ? ' (too few samples: run longer)' : ''}`);
  if (drainError) out.push(`  (final removal: ${drainError})`);
  const failed = crit.some(([, ok]) => ok === false);
  if ((failed || process.env['SOAK_KEEP_LOG'] === '1') && existsSync(env.daemonLog)) {
    const keep = join(tmpdir(), `cricket-soak-${new Date(t0).toISOString().replace(/[:.]/g, '-')}.log`);
    copyFileSync(env.daemonLog, keep);
    out.push(`  daemon log kept at ${keep}`);
  }
  out.push(failed ? 'SOAK FAILED' : 'SOAK PASSED', '');
  process.stdout.write(out.join('\n') + '\n');
  return interrupted > 0 ? 130 : failed ? 1 : 0;
}

/** Until Status answers (recovery done); UNAVAILABLE meanwhile is the contract, anything else a failure. */
async function waitRecovered(d: TestDaemon, rpc: SoakRpc): Promise<void> {
  const deadline = Date.now() + 180_000;
  for (;;) {
    try {
      await d.client.call('Status', {}, { timeoutMs: 5000 });
      return;
    } catch (err) {
      if (!(err instanceof CriCallError && err.code === status.UNAVAILABLE)) rpc.failures.add('Status (recovery)', (err as Error).message);
    }
    if (Date.now() > deadline) {
      rpc.failures.add('recovery', 'cricketd did not finish recovery within 180 s');
      return;
    }
    await sleep(100);
  }
}

/** README: running containers stay RUNNING and listed across a restart. */
async function checkStillRunning(rpc: SoakRpc, churn: PodChurn, before: string[]): Promise<void> {
  const list = await rpc.call('ListContainers', {}, { timeoutMs: 30_000 }).catch(() => undefined);
  if (!list) return;
  const now = new Map(list.containers.map((c) => [c.id, c]));
  const stillLive = new Set(churn.liveContainers());
  for (const id of before) {
    if (!stillLive.has(id)) continue; // a worker began removing it meanwhile
    const c = now.get(id);
    if (c?.state === ContainerState.CONTAINER_RUNNING) continue;
    const st = c ? (await rpc.call('ContainerStatus', { containerId: id }).catch(() => undefined))?.status : undefined;
    rpc.checkFailed(
      'running-after-restart',
      c ? `container ${id} was RUNNING before the SIGKILL, ${ContainerState[c.state]} after (exit ${st?.exitCode}, ${st?.reason}: ${st?.message})` : `container ${id} was RUNNING before the SIGKILL, not listed after`,
    );
  }
}

async function finalDrain(rpc: SoakRpc, churn: PodChurn, env: SoakEnv): Promise<void> {
  await churn.drain();
  const pods = (await rpc.must('ListPodSandbox', {}, { retry: 'always' })).items;
  if (pods.length > 0) rpc.checkFailed('leftover', `${pods.length} pods still listed after the soak removed its own: ${pods.map((p) => p.id.slice(0, 12)).join(' ')}`);
  for (const p of pods) {
    await rpc.call('StopPodSandbox', { podSandboxId: p.id }, { retry: 'always' }).catch(() => {});
    await rpc.call('RemovePodSandbox', { podSandboxId: p.id }, { retry: 'always' }).catch(() => {});
  }
  const ctrs = (await rpc.must('ListContainers', {}, { retry: 'always' })).containers;
  if (ctrs.length > 0) rpc.checkFailed('leftover', `${ctrs.length} containers listed with no pod left: ${ctrs.map((c) => c.id.slice(0, 12)).join(' ')}`);
  for (const c of ctrs) await rpc.call('RemoveContainer', { containerId: c.id }, { retry: 'always' }).catch(() => {});
  // kubelet's image GC, the last of it: nothing is in use any more.
  for (const img of [env.image!, ...env.extras]) await rpc.call('RemoveImage', { image: { image: img.ref } }, { retry: 'always' }).catch(() => {});
  const images = (await rpc.must('ListImages', {}, { retry: 'always' })).images;
  if (images.length > 0) rpc.checkFailed('leftover', `images still listed after RemoveImage of each: ${images.map((i) => i.repoTags.join(',') || i.id).join(' ')}`);
  for (const p of [...churn.pods.values()]) if (p.state !== 'leaving') rpc.checkFailed('leftover', `pod ${p.uid} never removed`);
}

type Leftovers = Inventory & { iptablesRules: string[]; runcContainers: string[]; filesBeyondSkeleton: string[]; daemonTmpFiles: string[] };

function leftovers(env: SoakEnv, skeleton: Set<string>): Leftovers {
  const inv = inventory(env);
  const tree = env.fileTree();
  // Files (not directories: an empty directory made on first use is skeleton) the daemon had not when it first started.
  const beyond = tree.filter((p) => !p.endsWith('/') && !skeleton.has(p));
  return {
    ...inv,
    iptablesRules: env.iptablesRules(),
    runcContainers: env.runcContainers(),
    filesBeyondSkeleton: beyond,
    daemonTmpFiles: readdirSync(env.daemonTmp),
  };
}

const count = (l: Leftovers) => Object.values(l).reduce((n, v: string[]) => n + v.length, 0);

function total(rpc: SoakRpc) {
  const t = { calls: 0, failed: 0, inflight: 0, unavailable: 0 };
  for (const [k, v] of rpc.tally) {
    if (k.startsWith('check:')) continue;
    t.calls += v.calls;
    t.failed += v.failed;
    t.inflight += v.inflight;
    t.unavailable += v.unavailable;
  }
  return t;
}

function streaks(m: Map<string, number>, ids: string[], report: (id: string) => void): void {
  const now = new Set(ids);
  for (const id of [...m.keys()]) if (!now.has(id)) m.delete(id);
  for (const id of ids) {
    const n = (m.get(id) ?? 0) + 1;
    m.set(id, n);
    if (n === 3) report(id);
  }
}

function growthText(g: Growth, f: (v: number) => string): string {
  if (g.first === undefined) return `last ${g.last !== undefined ? f(g.last) : '-'} (too few samples after warm-up for a comparison)`;
  const across = g.sameAge !== undefined ? `, same age in the last epoch ${f(g.sameAge)} (${signedPct(g.acrossPct)})` : '';
  const within = g.withinPcts.length > 0 ? `; within an epoch median ${signedPct(g.withinMedianPct)} (${g.withinPcts.map((p) => signedPct(p)).join(' ')})` : '';
  return `after warm-up ${f(g.first)}${across}${within}; last ${g.last !== undefined ? f(g.last) : '-'}`;
}

function withinLimit(g: Growth, limit: number): boolean | undefined {
  if (g.acrossPct === undefined && g.withinMedianPct === undefined) return undefined;
  return (g.acrossPct ?? 0) <= limit && (g.withinMedianPct ?? 0) <= limit;
}

/** fds move with the work in flight (each spawned process holds a few): flat is within the limit or a few fds. */
function fdsFlat(g: Growth, limit: number): boolean | undefined {
  if (g.first === undefined || (g.sameAge === undefined && g.withinPcts.length === 0)) return undefined;
  const ok = (p: number | undefined) => p === undefined || p <= limit || (g.first! * p) / 100 <= FD_SLACK;
  return ok(g.acrossPct) && ok(g.withinMedianPct);
}

/** Error-level log lines, and what node printed outside the log (warnings), grouped. */
function daemonErrors(file: string): { total: number; top: string[]; warnings: number; topWarnings: string[] } {
  const counts = new Map<string, number>();
  const warns = new Map<string, number>();
  let totalN = 0;
  let warnN = 0;
  if (!existsSync(file)) return { total: 0, top: [], warnings: 0, topWarnings: [] };
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (/^\(node:\d+\) \w*Warning/.test(line)) {
      warnN++;
      const k = line.replace(/^\(node:\d+\) /, '').slice(0, 160);
      warns.set(k, (warns.get(k) ?? 0) + 1);
    }
    if (!line.startsWith('{')) continue;
    try {
      const j = JSON.parse(line) as { level?: number; msg?: string; err?: { message?: string } };
      if ((j.level ?? 0) < 50) continue;
      totalN++;
      const k = `${j.msg ?? ''}${j.err?.message ? `: ${j.err.message}` : ''}`.replace(/[0-9a-f]{64}/g, '<id>').slice(0, 140);
      counts.set(k, (counts.get(k) ?? 0) + 1);
    } catch {
      // not a log line
    }
  }
  const top5 = (m: Map<string, number>) => [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([k, v]) => `${v}x ${k}`);
  return { total: totalN, top: top5(counts), warnings: warnN, topWarnings: top5(warns) };
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`soak: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(2);
  },
);
