// Shared set-up for the pod integration tests: a private daemon with its own CNI
// network, pod configs, and the host checks that nothing of a pod is left.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CriClient } from '../../src/client/cri-client.js';
import { NamespaceMode, type PodSandboxConfig, type DeepPartial } from '../../src/gen/runtime/v1/api.js';
import { removeDir, startDaemon, tempDir, type TestDaemon } from '../helpers/daemon.js';
import { ipamReservations, iptablesMentions, makeTestNet, mountsMentioning, type TestNet } from '../helpers/pod-net.js';
import { RUNSC_HANDLER_TOML, TEST_HANDLER } from '../helpers/handler.js';
import { cgroupDir } from '../helpers/cgroups.js';

/** A cleanup stack: node runs t.after hooks first-registered first; this runs them last-registered first. */
export function lifo(t: { after(fn: () => unknown): void }): (fn: () => unknown) => void {
  const fns: (() => unknown)[] = [];
  t.after(async () => {
    while (fns.length > 0) await fns.pop()!();
  });
  return (fn) => fns.push(fn);
}

/**
 * A private dir and CNI network for a test that restarts daemons on them. Cleanups
 * pushed on `defer` run newest first: the daemons (removing their pods) before the
 * network and the dir.
 */
export function privateNet(
  t: { after(fn: () => unknown): void },
  netOpts?: Parameters<typeof makeTestNet>[1],
): { dir: string; net: TestNet; defer: (fn: () => unknown) => void } {
  const dir = tempDir('cricket-pods-');
  const net = makeTestNet(dir, netOpts);
  const defer = lifo(t);
  defer(() => {
    net.destroy();
    removeDir(dir);
  });
  return { dir, net, defer };
}

export interface Env {
  dir: string;
  net: TestNet;
  d: TestDaemon;
  logs: string;
}

export async function setUp(
  t: { after(fn: () => unknown): void },
  dir = tempDir('cricket-pods-'),
  net?: TestNet,
  extraArgs: string[] = [],
  extraToml = '',
): Promise<Env> {
  const n = net ?? makeTestNet(dir);
  const logs = join(dir, 'logs');
  const d = await startDaemon({
    dir,
    args: ['--cni-conf-dir', n.confDir, ...extraArgs],
    configToml: `[logs]\nallowed_roots = [${JSON.stringify(logs)}]\n${extraToml}\n${RUNSC_HANDLER_TOML}`,
  });
  t.after(async () => {
    if (process.env['PODS_TEST_DEBUG']) console.error(d.output());
    // Leave nothing behind even when an assertion failed half-way.
    try {
      const pods = await d.client.call('ListPodSandbox', {});
      for (const p of pods.items) await d.client.call('RemovePodSandbox', { podSandboxId: p.id }).catch(() => {});
    } catch {
      // daemon already stopped
    }
    d.client.close();
    await d.stop();
    if (!net) {
      n.destroy();
      removeDir(dir);
    }
  });
  return { dir, net: n, d, logs };
}

export function podConfig(env: Env, name: string, extra: DeepPartial<PodSandboxConfig> = {}): DeepPartial<PodSandboxConfig> {
  const uid = `uid-${name}`;
  return {
    metadata: { name, namespace: 'pods-test', uid, attempt: 0 },
    hostname: name,
    logDirectory: join(env.logs, `pods-test_${name}_${uid}`),
    labels: { app: name, suite: 'pods' },
    annotations: { 'test/note': 'x' },
    linux: { securityContext: { namespaceOptions: { network: NamespaceMode.POD, pid: NamespaceMode.CONTAINER, ipc: NamespaceMode.POD } } },
    ...extra,
  };
}

export async function run(c: CriClient, config: DeepPartial<PodSandboxConfig>): Promise<string> {
  return (await c.call('RunPodSandbox', { config, runtimeHandler: TEST_HANDLER })).podSandboxId;
}

export async function info(c: CriClient, id: string): Promise<Record<string, any>> {
  const s = await c.call('PodSandboxStatus', { podSandboxId: id, verbose: true });
  return JSON.parse(s.info['info']!);
}

/** Asserts that nothing of pod `id` is left on the host. */
export function assertNothingLeft(env: Env, id: string, paths: { netns?: string; cgroup?: string }) {
  if (paths.netns) assert.equal(existsSync(paths.netns), false, 'netns file removed');
  assert.equal(mountsMentioning(id), 0, 'no mount mentions the pod');
  assert.equal(iptablesMentions(id), 0, 'no iptables rule mentions the pod');
  for (const f of ipamReservations(env.net)) {
    assert.doesNotMatch(readFileSync(join(env.net.ipamDir, env.net.name, f), 'utf8'), new RegExp(id), `IPAM reservation ${f} released`);
  }
  if (paths.cgroup) assert.equal(existsSync(cgroupDir('memory', paths.cgroup)), false, 'pod cgroup removed');
  assert.equal(existsSync(join(env.d.runRoot, 'pods', id)), false, 'pod run dir removed');
  assert.equal(existsSync(join(env.d.root, 'pods', 'meta', `${id}.json`)), false, 'pod record removed');
  assert.equal(existsSync(join(env.d.root, 'cni', 'results', `${id}.json`)), false, 'CNI cache entry removed');
}
