import { existsSync, readdirSync, readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { NamespaceMode, type DeepPartial, type PodSandboxConfig } from '../src/gen/runtime/v1/api.js';
import { startDaemon, tempDir } from '../test/helpers/daemon.js';
import { pushBusyboxImage } from '../test/helpers/oci-image.js';
import { makeTestNet } from '../test/helpers/pod-net.js';
import { imagesConfigToml, startRegistry } from '../test/helpers/registry.js';
import { RUNSC_HANDLER_TOML } from '../test/helpers/handler.js';
import { tearDownBench } from './lib-teardown.js';
import { line } from './lib-stats.js';

// 50 pods of one container each on a private bridge network, one after another as
// kubelet's pod workers on a quiet node: CreateContainer+StartContainer latency, the
// whole pod start (RunPodSandbox → first container running), then the resident memory
// of cricketd plus every conmon it started, with all 50 running. Then the same pod
// start for RUNSC_PODS pods on gVisor (the runsc handler, when /usr/bin/runsc is
// there), with the proportional memory (PSS) of each pod's runsc sandbox, gofers,
// holders and conmons: a gVisor pod's price beside a runc one's. Then a second
// container in each gVisor pod, which joins the pod's sandbox: its start and what it
// adds to the PSS.

const PODS = 50;
const RUNSC_PODS = Number(process.env['BENCH_RUNSC_PODS'] ?? 10);
const RUNSC = '/usr/bin/runsc';

function pssKiB(pid: number): number {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** runsc processes (sandbox, gofer) whose command line names this daemon's run root. */
function runscPids(runRoot: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
      if (cmd.includes('runsc') && cmd.includes(runRoot)) out.push(Number(p));
    } catch {
      // exited
    }
  }
  return out;
}

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

/** conmon processes whose command line names this daemon's run root. */
function conmonPids(runRoot: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
      if (cmd.startsWith('/usr/bin/conmon\0') && cmd.includes(runRoot)) out.push(Number(p));
    } catch {
      // exited
    }
  }
  return out;
}

async function main(): Promise<void> {
  const dir = tempDir('cricket-bench-ctr-');
  const net = makeTestNet(dir);
  const logs = join(dir, 'logs');
  const reg = await startRegistry();
  const image = await pushBusyboxImage(reg.host, 'bench/busybox', 'v1');
  const ddir = join(dir, 'daemon');
  mkdirSync(ddir);
  const d = await startDaemon({
    dir: ddir,
    args: ['--cni-conf-dir', net.confDir],
    configToml: `${imagesConfigToml(dir, reg.host)}\n[logs]\nallowed_roots = [${JSON.stringify(logs)}]\n${RUNSC_HANDLER_TOML}`,
  });
  const pods: string[] = [];
  try {
    for (let i = 0; i < 200; i++) {
      try {
        await d.client.call('PullImage', { image: { image: image.ref } });
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 50)); // recovery still running
      }
    }
    const startPods = async (handler: string, n: number) => {
      const createStart: number[] = [];
      const podStart: number[] = [];
      const made: string[] = [];
      const configs: DeepPartial<PodSandboxConfig>[] = [];
      for (let i = 0; i < n; i++) {
        const config: DeepPartial<PodSandboxConfig> = {
          metadata: { name: `bench-${handler}-${i}`, namespace: 'bench', uid: `uid-${handler}-${i}`, attempt: 0 },
          hostname: `bench-${i}`,
          logDirectory: join(logs, `bench_${handler}_${i}`),
          linux: { securityContext: { namespaceOptions: { network: NamespaceMode.POD, pid: NamespaceMode.CONTAINER, ipc: NamespaceMode.POD } } },
        };
        const t0 = process.hrtime.bigint();
        const { podSandboxId } = await d.client.call('RunPodSandbox', { config, runtimeHandler: handler });
        pods.push(podSandboxId);
        made.push(podSandboxId);
        configs.push(config);
        const t1 = process.hrtime.bigint();
        const { containerId } = await d.client.call('CreateContainer', {
          podSandboxId,
          config: { metadata: { name: 'main', attempt: 0 }, image: { image: image.ref }, command: ['sleep', '3600'], logPath: 'main/0.log' },
          sandboxConfig: config,
        });
        await d.client.call('StartContainer', { containerId });
        const t2 = process.hrtime.bigint();
        createStart.push(Number(t2 - t1) / 1e6);
        podStart.push(Number(t2 - t0) / 1e6);
      }
      return { createStart, podStart, pods: made, configs };
    };
    const { createStart, podStart } = await startPods('runc', PODS);
    const daemonPid = Number(readFileSync(join(d.runRoot, 'cricketd.pid'), 'utf8'));
    const conmons = conmonPids(d.runRoot);
    const daemonKiB = rssKiB(daemonPid);
    const conmonKiB = conmons.reduce((n, p) => n + rssKiB(p), 0);
    console.log(line('CreateContainer+StartContainer', createStart));
    console.log(line('pod start (RunPodSandbox → container running)', podStart));
    console.log(
      `memory with ${PODS} pods running: cricketd ${(daemonKiB / 1024).toFixed(1)} MiB + ${conmons.length} conmon ${(conmonKiB / 1024).toFixed(1)} MiB = ${((daemonKiB + conmonKiB) / 1024).toFixed(1)} MiB RSS`,
    );
    if (RUNSC_PODS > 0 && existsSync(RUNSC)) {
      const before = new Set(conmonPids(d.runRoot));
      const gv = await startPods('runsc', RUNSC_PODS);
      console.log(line('runsc CreateContainer+StartContainer', gv.createStart));
      console.log(line('runsc pod start (runp + create + start)', gv.podStart));
      // runsc's processes: the sandbox, gofers, each joining container's holder (bin/cricket-runsc-join) and its `runsc wait`.
      const gvKiB = () =>
        runscPids(d.runRoot).reduce((n, p) => n + pssKiB(p), 0) + conmonPids(d.runRoot).filter((p) => !before.has(p)).reduce((n, p) => n + pssKiB(p), 0);
      const onePerPod = gvKiB();
      console.log(`memory per runsc pod: ${(onePerPod / 1024 / RUNSC_PODS).toFixed(1)} MiB PSS (one sandbox + gofers + holder + conmon, ${RUNSC_PODS} pods of one container)`);
      const second: number[] = [];
      for (const [i, podSandboxId] of gv.pods.entries()) {
        const t0 = process.hrtime.bigint();
        const { containerId } = await d.client.call('CreateContainer', {
          podSandboxId,
          config: { metadata: { name: 'side', attempt: 0 }, image: { image: image.ref }, command: ['sleep', '3600'], logPath: 'side/0.log' },
          sandboxConfig: gv.configs[i],
        });
        await d.client.call('StartContainer', { containerId });
        second.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
      console.log(line('runsc second container of a pod (joins its sandbox): create + start', second));
      console.log(`memory a second container adds to a runsc pod: ${((gvKiB() - onePerPod) / 1024 / RUNSC_PODS).toFixed(1)} MiB PSS (gofer + holder + conmon)`);
      const kinds = new Map<string, number>();
      for (const p of runscPids(d.runRoot)) {
        const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
        const kind = argv.some((a) => a.endsWith('cricket-runsc-join'))
          ? 'holder'
          : argv.includes('boot')
            ? 'sandbox'
            : argv.includes('gofer')
              ? 'gofer'
              : argv.includes('wait')
                ? 'runsc wait'
                : 'other runsc';
        kinds.set(kind, (kinds.get(kind) ?? 0) + pssKiB(p));
      }
      const perPod = (kib: number) => `${(kib / 1024 / RUNSC_PODS).toFixed(1)}`;
      console.log(`  of which per pod of two containers (MiB PSS): ${[...kinds].map(([k, v]) => `${k} ${perPod(v)}`).join(', ')}`);
    }
  } finally {
    await tearDownBench(d, pods, net, reg, dir);
  }
}

await main();
