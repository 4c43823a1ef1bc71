import { tearDownBench } from './lib-teardown.js';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NamespaceMode, type DeepPartial, type PodSandboxConfig } from '../src/gen/runtime/v1/api.js';
import type { MethodName } from '../src/gen/methods.js';
import { startDaemon, tempDir } from '../test/helpers/daemon.js';
import { pushBusyboxImage } from '../test/helpers/oci-image.js';
import { makeTestNet } from '../test/helpers/pod-net.js';
import { imagesConfigToml, startRegistry } from '../test/helpers/registry.js';
import { pct } from './lib-stats.js';

// The fixed cost of the Status/List calls kubelet makes all the time: BENCH_CALLS_PODS
// (5) pods of one container each, then BENCH_CALLS (300) rounds of one call of each RPC,
// one after another over the project's client; median and p90 per RPC, client-side. With
// BENCH_CALLS_CPU_PROF=<dir> the daemon runs under `node --cpu-prof` and writes its
// profile there when it stops.

const PODS = Number(process.env['BENCH_CALLS_PODS'] ?? 5);
const CALLS = Number(process.env['BENCH_CALLS'] ?? 300);
const PROF = process.env['BENCH_CALLS_CPU_PROF'];
// BENCH_CALLS_METRICS=1: the daemon serves Prometheus metrics (what they add to a call).
const METRICS = process.env['BENCH_CALLS_METRICS'] === '1';
// BENCH_CALLS_TIMEOUT_MS: a deadline on every call, as kubelet and bench/compare set one.
const OPTS = process.env['BENCH_CALLS_TIMEOUT_MS'] ? { timeoutMs: Number(process.env['BENCH_CALLS_TIMEOUT_MS']) } : {};

/** A `node` first on the daemon's PATH that adds --cpu-prof (NODE_OPTIONS may not carry it). */
function profNode(dir: string, out: string): string {
  const bin = join(dir, 'prof-bin');
  mkdirSync(bin);
  writeFileSync(join(bin, 'node'), `#!/bin/sh\nexec ${process.execPath} --cpu-prof --cpu-prof-dir=${out} "$@"\n`, { mode: 0o755 });
  return bin;
}

/** utime + stime of a process, in ms (clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

async function main(): Promise<void> {
  const dir = tempDir('cricket-bench-calls-');
  const net = makeTestNet(dir);
  const logs = join(dir, 'logs');
  const reg = await startRegistry();
  const image = await pushBusyboxImage(reg.host, 'bench/busybox', 'v1');
  const ddir = join(dir, 'daemon');
  mkdirSync(ddir);
  const d = await startDaemon({
    dir: ddir,
    args: ['--cni-conf-dir', net.confDir, ...(METRICS ? ['--metrics-address', '127.0.0.1:0'] : [])],
    configToml: `${imagesConfigToml(dir, reg.host)}\n[logs]\nallowed_roots = [${JSON.stringify(logs)}]\n`,
    ...(PROF ? { env: { PATH: `${profNode(dir, PROF)}:${process.env['PATH'] ?? ''}` } } : {}),
  });
  const pods: string[] = [];
  const ctrs: string[] = [];
  try {
    await d.client.call('PullImage', { image: { image: image.ref } });
    for (let i = 0; i < PODS; i++) {
      const config: DeepPartial<PodSandboxConfig> = {
        metadata: { name: `calls-${i}`, namespace: 'bench', uid: `uid-${i}`, attempt: 0 },
        hostname: `calls-${i}`,
        logDirectory: join(logs, `calls_${i}`),
        linux: { securityContext: { namespaceOptions: { network: NamespaceMode.POD, pid: NamespaceMode.CONTAINER, ipc: NamespaceMode.POD } } },
      };
      const { podSandboxId } = await d.client.call('RunPodSandbox', { config });
      pods.push(podSandboxId);
      const { containerId } = await d.client.call('CreateContainer', {
        podSandboxId,
        config: { metadata: { name: 'main', attempt: 0 }, image: { image: image.ref }, command: ['sleep', '3600'], logPath: 'main/0.log' },
        sandboxConfig: config,
      });
      await d.client.call('StartContainer', { containerId });
      ctrs.push(containerId);
    }
    const kinds: { method: MethodName; req: (i: number) => object }[] = [
      { method: 'ImageStatus', req: () => ({ image: { image: image.ref } }) },
      { method: 'ListImages', req: () => ({}) },
      { method: 'ContainerStatus', req: (i) => ({ containerId: ctrs[i % ctrs.length] }) },
      { method: 'PodSandboxStatus', req: (i) => ({ podSandboxId: pods[i % pods.length] }) },
      { method: 'ListPodSandbox', req: () => ({}) },
      { method: 'ListContainers', req: () => ({}) },
      { method: 'Version', req: () => ({}) },
    ];
    for (let i = 0; i < 20; i++) for (const k of kinds) await d.client.call(k.method, k.req(i) as never); // warm
    // Round-robin over the RPCs, so none is measured colder or on a quieter machine.
    const ms = kinds.map((): number[] => []);
    const daemonPid = Number(readFileSync(join(d.runRoot, 'cricketd.pid'), 'utf8'));
    const cpu0 = cpuMs(daemonPid);
    const rss0 = rssMiB(daemonPid);
    for (let i = 0; i < CALLS; i++) {
      for (const [n, k] of kinds.entries()) {
        const t0 = process.hrtime.bigint();
        await d.client.call(k.method, k.req(i) as never, OPTS);
        ms[n]!.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
    }
    const cpu = cpuMs(daemonPid) - cpu0;
    console.log(`daemon CPU per call (all RPCs above): ${((cpu * 1000) / (CALLS * kinds.length)).toFixed(0)} µs; RSS ${rss0.toFixed(1)} → ${rssMiB(daemonPid).toFixed(1)} MiB`);
    for (const [n, k] of kinds.entries()) {
      console.log(`${`${k.method} (${PODS} pods)`.padEnd(28)} n=${CALLS}  median ${pct(ms[n]!, 50).toFixed(3)} ms  p90 ${pct(ms[n]!, 90).toFixed(3)} ms`);
    }
  } finally {
    await tearDownBench(d, pods, net, reg, dir);
  }
}

await main();
