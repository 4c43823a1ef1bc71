import { randomBytes } from 'node:crypto';
import { cpus } from 'node:os';
import { spawnSync } from 'node:child_process';
import type { MethodName } from '../../src/gen/methods.js';
import { tempDir } from '../../test/helpers/daemon.js';
import { pushBusyboxImage } from '../../test/helpers/oci-image.js';
import { startRegistry, type TestRegistry } from '../../test/helpers/registry.js';
import { pct } from '../lib-stats.js';
import { containerdVersion, startContainerd } from './containerd.js';
import { startCricket } from './cricket.js';
import { cpuParts, cpuSample, cpuSecondsBetween, loadAverage, privateKiB, pssKiB, TICK_S } from './procfs.js';
import type { Runtime } from './runtime.js';
import { sweepDeadRuns, sweepRun, writeRunRecord, BASE_PREFIX } from './sweep.js';
import { startMany, startPod, stopPod, timed, type PodHandle, type StartTimes, type StopTimes } from './workload.js';

// `make bench-compare`: Cricket and Debian's containerd side by side on this machine,
// driven by the project's own CRI client through the same workloads, interleaved
// (Cricket, containerd, Cricket, containerd ...) so that a change in the machine's load
// hits both alike. Prints one table with the ratio Cricket/containerd. A bench, never a
// test: it asserts nothing about the figures.
//
// BENCH_COMPARE=start,teardown,pull,calls,memory,scale,poll picks rows (default: all).
// BENCH_COMPARE_PODS (20) timed pod starts at the small node, after one warm-up pod each;
// BENCH_COMPARE_SCALE (110) pods started BENCH_COMPARE_PARALLEL (10) at a time;
// BENCH_COMPARE_POLL_SECONDS (60) of kubelet-like polling; BENCH_COMPARE_CALLS (200)
// calls per status/list row; BENCH_COMPARE_PULLS (10) pulls per runtime;
// BENCH_COMPARE_SETTLE_SECONDS (20) without calls before memory is read: a Node daemon's
// heap shrinks some 15 s after its last activity (V8's memory reducer), so a reading
// taken at once shows garbage, not what the daemon keeps.

const GROUPS = ['start', 'teardown', 'pull', 'calls', 'memory', 'scale', 'poll'] as const;
type Group = (typeof GROUPS)[number];

function envInt(name: string, def: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name}=${v}: want a whole number`);
  return n;
}

const picked = (process.env['BENCH_COMPARE'] ?? '').split(',').map((s) => s.trim()).filter(Boolean);
for (const g of picked) if (!(GROUPS as readonly string[]).includes(g)) throw new Error(`BENCH_COMPARE: unknown group "${g}" (know ${GROUPS.join(', ')})`);
const want = (g: Group) => picked.length === 0 || picked.includes(g);
const PODS = envInt('BENCH_COMPARE_PODS', 20);
const SCALE = envInt('BENCH_COMPARE_SCALE', 110);
const PARALLEL = envInt('BENCH_COMPARE_PARALLEL', 10);
const POLL_S = envInt('BENCH_COMPARE_POLL_SECONDS', 60);
const CALLS = envInt('BENCH_COMPARE_CALLS', 200);
const PULLS = envInt('BENCH_COMPARE_PULLS', 10);
const SETTLE_S = envInt('BENCH_COMPARE_SETTLE_SECONDS', 20);

// ---- the table ----

interface Row {
  label: string;
  a: string;
  b: string;
  ratio: string;
}
const rows: Row[] = [];
const notes: string[] = [];

const median = (xs: number[]) => (xs.length > 0 ? pct(xs, 50) : NaN);
const fmtMs = (v: number) => (Number.isNaN(v) ? '—' : v >= 100 ? `${v.toFixed(0)} ms` : v >= 10 ? `${v.toFixed(1)} ms` : `${v.toFixed(2)} ms`);
const fmtRatio = (a: number, b: number) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? (a / b).toFixed(2) : '—');
function row(label: string, a: number, b: number, fmt: (v: number) => string = fmtMs, extraA = '', extraB = ''): void {
  rows.push({ label, a: fmt(a) + extraA, b: fmt(b) + extraB, ratio: fmtRatio(a, b) });
  printRow(rows[rows.length - 1]!);
}
function printRow(r: Row): void {
  // Rows go out as they are measured too, so a long run shows progress.
  process.stderr.write(`  ${r.label}: ${r.a} | ${r.b} | ${r.ratio}\n`);
}
const mib = (kib: number) => kib / 1024;
const fmtMiB = (v: number) => `${v.toFixed(1)} MiB`;

// ---- measurements ----

/** PSS of the daemon, median of three samples a second apart (a GC can land on one). */
async function daemonPss(rt: Runtime): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < 3; i++) {
    xs.push(pssKiB(rt.daemonPid()));
    if (i < 2) await sleep(1000);
  }
  return median(xs);
}

function helpersPss(rt: Runtime): { kib: number; count: number } {
  const pids = rt.helperPids();
  return { kib: pids.reduce((n, p) => n + pssKiB(p), 0), count: pids.length };
}

async function memoryRows(rts: [Runtime, Runtime], pods: number): Promise<void> {
  const busy = rts.map((rt) => pssKiB(rt.daemonPid()) + helpersPss(rt).kib);
  await sleep(SETTLE_S * 1000);
  const [da, db] = [await daemonPss(rts[0]), await daemonPss(rts[1])];
  const [ha, hb] = [helpersPss(rts[0]), helpersPss(rts[1])];
  const a = da + ha.kib;
  const b = db + hb.kib;
  rows.push({
    label: `memory with ${pods} pods (daemon + per-pod helpers, PSS, ${SETTLE_S} s without calls)`,
    a: `${fmtMiB(mib(a))} (daemon ${mib(da).toFixed(0)} + ${ha.count} ${rts[0].helperName} ${ha.count ? (mib(ha.kib) / ha.count).toFixed(2) : '0'} each)`,
    b: `${fmtMiB(mib(b))} (daemon ${mib(db).toFixed(0)} + ${hb.count} ${rts[1].helperName} ${hb.count ? (mib(hb.kib) / hb.count).toFixed(2) : '0'} each)`,
    ratio: fmtRatio(a, b),
  });
  printRow(rows[rows.length - 1]!);
  notes.push(`memory with ${pods} pods read at once, before settling: ${fmtMiB(mib(busy[0]!))} / ${fmtMiB(mib(busy[1]!))}`);
  notes.push(`memory with ${pods} pods, daemon private memory (USS; PSS also shares code pages with other processes): ${fmtMiB(mib(privateKiB(rts[0].daemonPid())))} / ${fmtMiB(mib(privateKiB(rts[1].daemonPid())))}`);
}

type CallKind = { label: string; method: MethodName; req: (pods: PodHandle[], i: number) => object };

function callKinds(image: string): CallKind[] {
  return [
    // The floor: no work in either runtime, only the gRPC round trip over the unix socket.
    { label: 'Version (transport only)', method: 'Version', req: () => ({}) },
    { label: 'ImageStatus', method: 'ImageStatus', req: () => ({ image: { image } }) },
    { label: 'ListImages', method: 'ListImages', req: () => ({}) },
    { label: 'ContainerStatus', method: 'ContainerStatus', req: (p, i) => ({ containerId: p[i % p.length]!.containerId }) },
    { label: 'PodSandboxStatus', method: 'PodSandboxStatus', req: (p, i) => ({ podSandboxId: p[i % p.length]!.podId }) },
    { label: 'ListPodSandbox', method: 'ListPodSandbox', req: () => ({}) },
    { label: 'ListContainers', method: 'ListContainers', req: () => ({}) },
  ];
}

/** Each call CALLS times per runtime, in blocks of 10 alternating between the runtimes; median per runtime. */
async function callRows(rts: [Runtime, Runtime], pods: [PodHandle[], PodHandle[]], image: [string, string], where: string): Promise<void> {
  const kinds: [CallKind[], CallKind[]] = [callKinds(image[0]), callKinds(image[1])];
  for (let k = 0; k < kinds[0].length; k++) {
    const lat: [number[], number[]] = [[], []];
    for (let i = 0; i < 10; i++) for (const s of [0, 1] as const) await timed(rts[s], kinds[s][k]!.method, kinds[s][k]!.req(pods[s], i)); // warm
    for (let i = 0; i < CALLS; i += 10) {
      check();
      for (const s of [0, 1] as const) {
        for (let j = i; j < Math.min(CALLS, i + 10); j++) lat[s].push((await timed(rts[s], kinds[s][k]!.method, kinds[s][k]!.req(pods[s], j))).ms);
      }
    }
    row(`${kinds[0][k]!.label}, median of ${CALLS} (${where})`, median(lat[0]), median(lat[1]));
  }
}

async function pullRows(rts: [Runtime, Runtime], small: string, mb: number): Promise<void> {
  const lat: [number[], number[]] = [[], []];
  for (let i = 0; i < PULLS + 1; i++) {
    check();
    for (const s of [0, 1] as const) {
      const { ms } = await timed(rts[s], 'PullImage', { image: { image: small } });
      if (i > 0) lat[s].push(ms); // the first pull of each is a warm-up
      await rts[s].client.call('RemoveImage', { image: { image: small } }, { timeoutMs: 60_000 });
    }
  }
  row(`PullImage, ${mb.toFixed(1)} MB image, loopback registry, median of ${PULLS} (removed between pulls)`, median(lat[0]), median(lat[1]));
}

/**
 * kubelet-like polling of a node for `seconds`: every second a relist (ListPodSandbox +
 * ListContainers, as the generic PLEG does), every pod's PodSandboxStatus +
 * ContainerStatus once per 10 s (spread over the seconds, as pod workers' syncs are),
 * ListContainerStats + ListPodSandboxStats every 10 s (CRI stats). CPU of the daemon
 * and its helpers over the window, latency of every call.
 */
interface PollResult {
  /** CPU seconds of daemon + helpers over the window. */
  cpu: number;
  /** Of which: the daemon itself, children it reaped (runc, CNI, nsenter ...), the helpers. */
  daemonSelf: number;
  daemonChildren: number;
  /** CPU seconds of daemon + helpers while a stats call was in flight, by method. */
  statsCpu: Map<string, number>;
  lat: number[];
  byMethod: Map<string, number[]>;
  errors: number;
}

async function poll(rt: Runtime, pods: PodHandle[], seconds: number): Promise<PollResult> {
  const lat: number[] = [];
  const byMethod = new Map<string, number[]>();
  const statsCpu = new Map<string, number>();
  let errors = 0;
  const procs = () => [rt.daemonPid(), ...rt.helperPids()];
  const call = async (method: MethodName, req: object, cpu = false) => {
    const before = cpu ? cpuSample(procs()) : undefined;
    try {
      const { ms } = await timed(rt, method, req, 30_000);
      lat.push(ms);
      const l = byMethod.get(method) ?? [];
      l.push(ms);
      byMethod.set(method, l);
    } catch {
      errors++;
    }
    if (before) statsCpu.set(method, (statsCpu.get(method) ?? 0) + cpuSecondsBetween(before, cpuSample(procs())));
  };
  const before = cpuSample(procs());
  const d0 = cpuParts(rt.daemonPid());
  const t0 = Date.now();
  for (let t = 0; t < seconds; t++) {
    check();
    await call('ListPodSandbox', {});
    await call('ListContainers', {});
    for (let i = t % 10; i < pods.length; i += 10) {
      await call('PodSandboxStatus', { podSandboxId: pods[i]!.podId });
      await call('ContainerStatus', { containerId: pods[i]!.containerId });
    }
    if (t % 10 === 5) {
      await call('ListContainerStats', {}, true);
      await call('ListPodSandboxStats', {}, true);
    }
    const wait = t0 + (t + 1) * 1000 - Date.now();
    if (wait > 0) await sleep(wait);
  }
  const after = cpuSample(procs());
  const d1 = cpuParts(rt.daemonPid());
  return {
    cpu: cpuSecondsBetween(before, after),
    daemonSelf: d0 && d1 ? (d1.self - d0.self) * TICK_S : NaN,
    daemonChildren: d0 && d1 ? (d1.children - d0.children) * TICK_S : NaN,
    statsCpu,
    lat,
    byMethod,
    errors,
  };
}

// ---- the run ----

let stopping = false;
const wake = new AbortController();
/** A sleep that a SIGINT/SIGTERM ends at once. */
const sleep = (ms: number) =>
  new Promise<void>((r) => {
    if (stopping) return r();
    const onAbort = () => (clearTimeout(t), r());
    const t = setTimeout(() => (wake.signal.removeEventListener('abort', onAbort), r()), ms);
    wake.signal.addEventListener('abort', onAbort, { once: true });
  });
const isStopping = () => stopping;
function check(): void {
  if (stopping) throw new Error('interrupted');
}

async function main(): Promise<void> {
  const started = Date.now();
  const loadBefore = loadAverage();
  const base = tempDir(BASE_PREFIX);
  const cgTop = `/bcmp-${randomBytes(3).toString('hex')}`;
  const rts: Runtime[] = [];
  let reg: TestRegistry | undefined;
  writeRunRecord(base, cgTop);
  const cleanup = async () => {
    const left: string[] = [];
    for (const rt of rts.splice(0)) left.push(...(await rt.destroy().catch((err: unknown) => [`${rt.name}: cleanup failed: ${String(err)}`])));
    await reg?.stop();
    reg = undefined;
    // Whatever the graceful cleanup could not remove (sweepRun touches only what base names).
    left.push(...sweepRun(base, cgTop));
    return left;
  };
  // A signal stops the run at its next step (sleeps and polling wake at once); the
  // finally below cleans up. A second signal only says so.
  const onSignal = (sig: NodeJS.Signals) => {
    if (stopping) {
      process.stderr.write(`${sig}: still cleaning up\n`);
      return;
    }
    stopping = true;
    wake.abort();
    process.stderr.write(`\n${sig}: stopping, then cleaning up\n`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  for (const f of sweepDeadRuns()) notes.push(`left by an earlier run, now removed: ${f}`);

  try {
    const version = containerdVersion();
    if (version === 'missing') throw new Error('containerd is not installed: run `make bench-compare` (it installs Debian\'s containerd)');
    if (!version.startsWith('1.6.')) notes.push(`containerd ${version}, not the 1.6 line the issue measured`);
    process.stderr.write(`bench-compare: load ${loadBefore}; setting up (registry, images, containerd ${version}, cricketd)\n`);
    reg = await startRegistry();
    const busybox = await pushBusyboxImage(reg.host, 'bench/busybox', 'v1');
    // A different image for the pull rows, so no blob is shared with the one pods run.
    const small = await pushBusyboxImage(reg.host, 'bench/small', 'v1', { extraFiles: [{ path: 'etc/bench-small', content: randomBytes(16).toString('hex') }] });
    const smallMb = small.layers.reduce((n, l) => n + l.size, 0) / 1e6;
    // containerd's sandbox (pause) container: static busybox sleeping, from the loopback registry.
    const pause = await pushBusyboxImage(reg.host, 'bench/pause', 'v1', { Entrypoint: ['/bin/sleep'], Cmd: ['infinity'] });

    rts.push(await startCricket(base, reg.host, `${cgTop}/cricket`));
    rts.push(await startContainerd(base, reg.host, pause.ref, `${cgTop}/containerd`));
    const pair = rts as [Runtime, Runtime];
    const [A, B] = pair;
    for (const rt of pair) await rt.client.call('PullImage', { image: { image: busybox.ref } }, { timeoutMs: 120_000 });
    // containerd pulls its sandbox image at the first RunPodSandbox otherwise.
    await B.client.call('PullImage', { image: { image: pause.ref } }, { timeoutMs: 120_000 });

    if (want('memory')) {
      notes.push(`daemon PSS, idle, read at once after the pulls: ${fmtMiB(mib(pssKiB(A.daemonPid())))} / ${fmtMiB(mib(pssKiB(B.daemonPid())))}`);
      await sleep(SETTLE_S * 1000);
      const [a, b] = [await daemonPss(A), await daemonPss(B)];
      row(`daemon PSS, idle (images pulled, no pods, ${SETTLE_S} s without calls)`, mib(a), mib(b), fmtMiB);
    }

    // ---- the small node ----
    const small0: [PodHandle[], PodHandle[]] = [[], []];
    if (want('start') || want('teardown') || want('calls') || want('memory')) {
      process.stderr.write(`small node: 1 + ${PODS} pods each, interleaved\n`);
      const times: [StartTimes[], StartTimes[]] = [[], []];
      for (let i = 0; i <= PODS; i++) {
        for (const s of [0, 1] as const) {
          check();
          const r = await startPod(pair[s], busybox.ref, 'small', i);
          small0[s].push(r.pod);
          if (i > 0) times[s].push(r.t); // pod 0 is each runtime's warm-up
        }
      }
      if (want('start')) {
        const m = (s: 0 | 1, k: keyof StartTimes) => median(times[s].map((t) => t[k]));
        row(`pod start: RunPodSandbox + CreateContainer + StartContainer, median of ${PODS}`, m(0, 'total'), m(1, 'total'));
        for (const [k, label] of [['run', 'RunPodSandbox'], ['create', 'CreateContainer'], ['start', 'StartContainer']] as const) {
          row(`${label}, median of ${PODS}`, m(0, k), m(1, k));
        }
      }
      if (want('calls')) await callRows(pair, small0, [busybox.ref, busybox.ref], `${PODS + 1} pods`);
      if (want('memory')) await memoryRows(pair, PODS + 1);
    }

    if (want('pull')) await pullRows(pair, small.ref, smallMb);

    if (small0[0].length > 0) {
      const stops: [StopTimes[], StopTimes[]] = [[], []];
      for (let i = 0; i < Math.max(small0[0].length, small0[1].length); i++) {
        for (const s of [0, 1] as const) {
          check();
          const p = small0[s][i];
          if (p) stops[s].push(await stopPod(pair[s], p));
        }
      }
      if (want('teardown')) {
        const m = (s: 0 | 1, k: keyof StopTimes) => median(stops[s].map((t) => t[k]));
        for (const [k, label] of [['stopContainer', 'StopContainer'], ['removeContainer', 'RemoveContainer'], ['stopPod', 'StopPodSandbox'], ['removePod', 'RemovePodSandbox']] as const) {
          row(`${label}, median of ${stops[0].length}`, m(0, k), m(1, k));
        }
      }
    }

    // ---- the full node ----
    if (want('scale') || want('poll')) {
      process.stderr.write(`full node: ${SCALE} pods each, ${PARALLEL} at a time\n`);
      const big: [PodHandle[], PodHandle[]] = [[], []];
      const secs: [number, number] = [0, 0];
      const fails: [string[], string[]] = [[], []];
      for (const s of [0, 1] as const) {
        check();
        const r = await startMany(pair[s], busybox.ref, 'big', SCALE, PARALLEL, isStopping);
        big[s] = r.pods;
        secs[s] = r.seconds;
        fails[s] = r.failures;
        for (const f of r.failures.slice(0, 3)) notes.push(`${pair[s].name}: a pod start failed while starting ${SCALE}: ${f}`);
      }
      if (want('scale')) {
        const failNote = (s: 0 | 1) => (fails[s].length > 0 ? ` (${fails[s].length} of ${SCALE} failed)` : '');
        row(`time to start ${SCALE} pods ${PARALLEL} at a time`, secs[0], secs[1], (v) => `${v.toFixed(1)} s`, failNote(0), failNote(1));
        if (want('calls')) await callRows(pair, big, [busybox.ref, busybox.ref], `${big[0].length}/${big[1].length} pods`);
        if (want('memory')) await memoryRows(pair, SCALE);
      }
      if (want('poll') && POLL_S > 0) {
        process.stderr.write(`polling ${POLL_S} s each\n`);
        const res = [];
        for (const s of [0, 1] as const) {
          check();
          res.push(await poll(pair[s], big[s], POLL_S));
        }
        const [ra, rb] = res as [Awaited<ReturnType<typeof poll>>, Awaited<ReturnType<typeof poll>>];
        row(`runtime CPU (daemon + helpers), ${POLL_S} s of kubelet-like polling of ${big[0].length}/${big[1].length} pods`, ra.cpu, rb.cpu, (v) => `${v.toFixed(2)} s`);
        const secs = (v: number) => `${v.toFixed(2)} s`;
        const statsOf = (r: PollResult) => (r.statsCpu.get('ListContainerStats') ?? 0) + (r.statsCpu.get('ListPodSandboxStats') ?? 0);
        row('  of which while ListContainerStats + ListPodSandboxStats ran', statsOf(ra), statsOf(rb), secs);
        row('call latency during that polling, p50', median(ra.lat), median(rb.lat));
        for (const m of ['ListContainerStats', 'ListPodSandboxStats']) {
          notes.push(`polling: CPU while the ${ra.byMethod.get(m)?.length ?? 0} ${m} calls ran: ${secs(ra.statsCpu.get(m) ?? 0)} / ${secs(rb.statsCpu.get(m) ?? 0)}`);
        }
        for (const [r, rt] of [[ra, A], [rb, B]] as const) {
          notes.push(
            `polling: ${rt.name} CPU split: daemon ${secs(r.daemonSelf)}, processes it spawned and reaped ${secs(r.daemonChildren)}, ${rt.helperName} ${secs(r.cpu - r.daemonSelf - r.daemonChildren)}`,
          );
        }
        for (const m of ['ListPodSandbox', 'ListContainers', 'PodSandboxStatus', 'ContainerStatus', 'ListContainerStats', 'ListPodSandboxStats']) {
          const a = ra.byMethod.get(m) ?? [];
          const b = rb.byMethod.get(m) ?? [];
          notes.push(`polling ${m}: p50 ${fmtMs(median(a))} / ${fmtMs(median(b))}, p90 ${fmtMs(a.length ? pct(a, 90) : NaN)} / ${fmtMs(b.length ? pct(b, 90) : NaN)} (n=${a.length}/${b.length})`);
        }
        if (ra.errors + rb.errors > 0) notes.push(`polling errors: ${ra.errors} Cricket, ${rb.errors} containerd`);
      }
    }
  } finally {
    process.stderr.write('cleaning up\n');
    for (const l of await cleanup()) notes.push(`cleanup found: ${l}`);
    if (stopping) for (const n of notes) process.stderr.write(`- ${n}\n`);
  }

  const loadAfter = loadAverage();
  console.log('');
  console.log(`| measure | Cricket | containerd | ratio |`);
  console.log(`|---|---|---|---|`);
  for (const r of rows) console.log(`| ${r.label} | ${r.a} | ${r.b} | ${r.ratio} |`);
  console.log('');
  console.log(
    `containerd ${containerdVersion()}, runc ${spawnSync('runc', ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0]?.split(' ')[2] ?? '?'}, node ${process.version}, ${cpus().length} CPUs; ` +
      `load average before ${loadBefore}, after ${loadAfter}; ${((Date.now() - started) / 1000).toFixed(0)} s in all. ratio = Cricket / containerd.`,
  );
  for (const n of notes) console.log(`- ${n}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
