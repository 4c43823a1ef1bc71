import { join } from 'node:path';
import { NamespaceMode, type DeepPartial, type PodSandboxConfig } from '../src/gen/runtime/v1/api.js';
import { removeDir, startDaemon, tempDir } from '../test/helpers/daemon.js';
import { makeTestNet } from '../test/helpers/pod-net.js';
import { line } from './lib-stats.js';

// RunPodSandbox latency over 50 pods (one after another, as kubelet's pod workers on a
// quiet node), then StopPodSandbox+RemovePodSandbox per pod, on a private bridge +
// host-local + portmap network. A host-network series shows the cost without CNI.

const PODS = 50;

async function series(hostNetwork: boolean): Promise<string[]> {
  const dir = tempDir('cricket-bench-pods-');
  const net = makeTestNet(dir);
  const logs = join(dir, 'logs');
  const d = await startDaemon({ dir, args: ['--cni-conf-dir', net.confDir], configToml: `[logs]\nallowed_roots = [${JSON.stringify(logs)}]\n` });
  const ids: string[] = [];
  try {
    const run: number[] = [];
    const teardown: number[] = [];
    for (let i = 0; i < PODS; i++) {
      const config: DeepPartial<PodSandboxConfig> = {
        metadata: { name: `bench-${i}`, namespace: 'bench', uid: `uid-${i}`, attempt: 0 },
        hostname: `bench-${i}`,
        logDirectory: join(logs, `bench_${i}`),
        linux: {
          securityContext: {
            namespaceOptions: { network: hostNetwork ? NamespaceMode.NODE : NamespaceMode.POD, pid: NamespaceMode.CONTAINER, ipc: NamespaceMode.POD },
          },
        },
      };
      const t0 = process.hrtime.bigint();
      const { podSandboxId } = await d.client.call('RunPodSandbox', { config });
      run.push(Number(process.hrtime.bigint() - t0) / 1e6);
      ids.push(podSandboxId);
    }
    while (ids.length > 0) {
      const id = ids.shift()!;
      const t0 = process.hrtime.bigint();
      await d.client.call('StopPodSandbox', { podSandboxId: id });
      await d.client.call('RemovePodSandbox', { podSandboxId: id });
      teardown.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    const kind = hostNetwork ? 'host network' : 'bridge+portmap CNI';
    return [line(`RunPodSandbox (${kind})`, run), line(`Stop+RemovePodSandbox (${kind})`, teardown)];
  } finally {
    for (const id of ids) await d.client.call('RemovePodSandbox', { podSandboxId: id }).catch(() => {});
    d.client.close();
    await d.stop();
    net.destroy();
    removeDir(dir);
  }
}

async function main(): Promise<void> {
  const rows = [...(await series(false)), ...(await series(true))];
  console.log(`pods: ${PODS} per series, sequential, ${process.platform}, node ${process.version}`);
  for (const r of rows) console.log(r);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
