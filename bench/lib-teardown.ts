import { removeDir, type TestDaemon } from '../test/helpers/daemon.js';
import type { TestNet } from '../test/helpers/pod-net.js';
import type { TestRegistry } from '../test/helpers/registry.js';

/** What a bench with pods made, undone: its pods, daemon, network, registry and dir (bench/run.ts skips lib-* files). */
export async function tearDownBench(d: TestDaemon, pods: readonly string[], net: TestNet, reg: TestRegistry, dir: string): Promise<void> {
  for (const id of pods) {
    await d.client.call('StopPodSandbox', { podSandboxId: id }).catch(() => {});
    await d.client.call('RemovePodSandbox', { podSandboxId: id }).catch(() => {});
  }
  d.client.close();
  await d.stop();
  net.destroy();
  await reg.stop();
  removeDir(dir);
}
