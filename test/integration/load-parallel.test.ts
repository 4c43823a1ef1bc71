import { test } from 'node:test';
import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CriCallError, CriClient } from '../../src/client/cri-client.js';
import { ContainerState, NamespaceMode, PodSandboxState, Protocol, type DeepPartial, type PodSandboxConfig } from '../../src/gen/runtime/v1/api.js';
import { pushBusyboxImage } from '../helpers/oci-image.js';
import { emptyInventory, inventory, mountLines, setUpDurEnv, type DurEnv, type Inventory } from './durability-env.js';

// kubelet-shaped load: one worker per pod, 10 at a time (kubelet's parallelism), on
// one daemon. Pods share a parent cgroup that none of them finds made (as the default
// /cricket after the last pod went), share a PID namespace (a catatonit init moved into
// the pod cgroup: where an uninitialised cpuset answered ENOSPC), the bridge, the
// iptables chains, and the image store. Every call must succeed or fail clearly, and
// in the end nothing may be left on the host.

const WAYS = 10;

/** Runs fn over items with at most `ways` at once; settles every one. */
async function pool<T, R>(items: readonly T[], ways: number, fn: (item: T, i: number) => Promise<R>): Promise<PromiseSettledResult<R>[]> {
  const out: PromiseSettledResult<R>[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(ways, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        try {
          out[i] = { status: 'fulfilled', value: await fn(items[i]!, i) };
        } catch (reason) {
          out[i] = { status: 'rejected', reason };
        }
      }
    }),
  );
  return out;
}

async function until(cond: () => boolean, what: string, maxMs = 60_000): Promise<void> {
  const deadline = Date.now() + maxMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function failures(rs: readonly PromiseSettledResult<unknown>[]): string[] {
  return rs.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => String(r.reason));
}

function values<R>(rs: readonly PromiseSettledResult<R>[]): R[] {
  return rs.filter((r): r is PromiseFulfilledResult<R> => r.status === 'fulfilled').map((r) => r.value);
}

interface Started {
  pod: string;
  ctr: string;
  initPid: number;
  cfg: DeepPartial<PodSandboxConfig>;
}

/** A pod like kubelet's default one: its own network, IPC and a shared PID namespace, under `parent`. */
function loadPodConfig(env: DurEnv, name: string, parent: string, hostPort?: number): DeepPartial<PodSandboxConfig> {
  const cfg = env.podConfig(name);
  const uid = cfg.metadata!.uid!;
  cfg.linux = {
    cgroupParent: `${parent}/pod-${uid}`,
    securityContext: { namespaceOptions: { network: NamespaceMode.POD, pid: NamespaceMode.POD, ipc: NamespaceMode.POD } },
  };
  // portmap's shared chains (CNI-HOSTPORT-*) are edited by every such pod at once.
  if (hostPort !== undefined) cfg.portMappings = [{ protocol: Protocol.TCP, containerPort: 8080, hostPort }];
  return cfg;
}

/** A run of free-looking host ports for one test. */
const portBase = () => 20000 + randomInt(20000);

async function startOne(env: DurEnv, cfg: DeepPartial<PodSandboxConfig>): Promise<Started> {
  const c = env.d.client;
  const pod = (await c.call('RunPodSandbox', { config: cfg })).podSandboxId;
  const ctr = (await c.call('CreateContainer', { podSandboxId: pod, config: env.ctrConfig('sleeper', ['sleep', '3600']), sandboxConfig: cfg })).containerId;
  await c.call('StartContainer', { containerId: ctr });
  const info = JSON.parse((await c.call('PodSandboxStatus', { podSandboxId: pod, verbose: true })).info['info']!);
  return { pod, ctr, initPid: info.pid as number, cfg };
}

async function tearDownOne(env: DurEnv, s: { pod: string; ctr?: string }): Promise<void> {
  const c = env.d.client;
  if (s.ctr) {
    await c.call('StopContainer', { containerId: s.ctr, timeout: 0n });
    await c.call('RemoveContainer', { containerId: s.ctr });
  }
  await c.call('StopPodSandbox', { podSandboxId: s.pod });
  await c.call('RemovePodSandbox', { podSandboxId: s.pod });
}

function isCatatonit(pid: number): boolean {
  try {
    return pid > 0 && readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'catatonit';
  } catch {
    return false;
  }
}

/**
 * The inventory after every pod is gone. The shared parent itself may stay, empty: it
 * was made by one of the pods, and the runtime removes only what a pod made when that
 * pod goes (kubelet owns such parents in real life); everything below it must be gone.
 */
function assertNothingLeft(env: DurEnv, sharedLevel: string): void {
  const inv: Inventory = inventory(env);
  const strays = inv.cgroups.filter((c) => !c.endsWith(`:/${sharedLevel}`));
  assert.deepEqual(strays, [], 'no pod or container cgroup is left');
  assert.deepEqual({ ...inv, cgroups: [] }, emptyInventory());
}

test(`30 pods started ${WAYS} at a time all run; torn down ${WAYS} at a time while 20 more start; nothing is left`, { timeout: 600_000 }, async (t) => {
  const env = await setUpDurEnv();
  t.after(() => env.cleanup());
  const c = env.d.client;
  const sharedLevel = `load${randomBytes(2).toString('hex')}`;
  const parent = `${env.cgroupRoot}/${sharedLevel}`;

  const ports = portBase();
  const t0 = Date.now();
  const first = await pool(Array.from({ length: 30 }, (_, i) => i), WAYS, (i) => startOne(env, loadPodConfig(env, `load${i}`, parent, ports + i)));
  t.diagnostic(`30 pods + containers started ${WAYS}-way in ${Date.now() - t0} ms`);
  assert.deepEqual(failures(first), [], 'every pod and container started');
  const started = values(first);

  const pods = (await c.call('ListPodSandbox', {})).items;
  assert.equal(pods.length, 30);
  assert.ok(pods.every((p) => p.state === PodSandboxState.SANDBOX_READY), 'all READY');
  const running = (await c.call('ListContainers', { filter: { state: { state: ContainerState.CONTAINER_RUNNING } } })).containers;
  assert.deepEqual(running.map((x) => x.id).sort(), started.map((s) => s.ctr).sort(), 'all containers RUNNING');
  const ips = await Promise.all(started.map(async (s) => (await c.call('PodSandboxStatus', { podSandboxId: s.pod })).status!.network!.ip));
  assert.equal(new Set(ips).size, 30, `one IP each: ${ips.join(' ')}`);
  assert.ok(started.every((s) => isCatatonit(s.initPid)), 'every pod has its init');
  const inv = inventory(env);
  assert.equal(inv.veths.length, 30);
  assert.deepEqual(inv.ipamIds.sort(), started.map((s) => s.pod).sort());
  assert.deepEqual(inv.conmonIds.sort(), started.map((s) => s.ctr).sort());
  assert.equal(inv.pins.length, 30 * 4, 'net, ipc, uts and pid pinned for each pod');
  const nat = spawnSync('iptables-save', ['-t', 'nat'], { encoding: 'utf8' }).stdout;
  for (let i = 0; i < 30; i++) assert.ok(nat.includes(`--dport ${ports + i} -j DNAT`), `host port ${ports + i} is mapped`);

  // ExecSync into every container, 10 at a time: each answers for itself.
  const execs = await pool(started, WAYS, async (s) => {
    const r = await c.call('ExecSync', { containerId: s.ctr, cmd: ['sh', '-c', 'cat /etc/hostname'], timeout: 30n });
    return Buffer.from(r.stdout).toString().trim();
  });
  assert.deepEqual(failures(execs), []);
  assert.deepEqual(values(execs), started.map((s) => s.cfg.hostname), 'every exec ran in its own pod');

  // Teardown of the first 30 and start of 20 more at once, each 10-way: pods leave the
  // shared parent while others are entering it.
  const t1 = Date.now();
  const [down, second] = await Promise.all([
    pool(started, WAYS, (s) => tearDownOne(env, s)),
    pool(Array.from({ length: 20 }, (_, i) => i), WAYS, (i) => startOne(env, loadPodConfig(env, `churn${i}`, parent))),
  ]);
  t.diagnostic(`30 torn down while 20 started, ${WAYS}-way each, in ${Date.now() - t1} ms`);
  assert.deepEqual(failures(down), [], 'every teardown succeeded');
  assert.deepEqual(failures(second), [], 'every pod started while others left');
  const more = values(second);
  assert.deepEqual(
    (await c.call('ListPodSandbox', {})).items.map((p) => p.id).sort(),
    more.map((s) => s.pod).sort(),
    'exactly the new pods are listed',
  );
  assert.ok(more.every((s) => isCatatonit(s.initPid)));

  const t2 = Date.now();
  assert.deepEqual(failures(await pool(more, WAYS, (s) => tearDownOne(env, s))), []);
  t.diagnostic(`20 torn down ${WAYS}-way in ${Date.now() - t2} ms`);
  assert.deepEqual((await c.call('ListPodSandbox', {})).items, []);
  assert.deepEqual((await c.call('ListContainers', {})).containers, []);
  for (const s of [...started, ...more]) assert.equal(isCatatonit(s.initPid), false, `init ${s.initPid} of ${s.pod} is gone`);
  assertNothingLeft(env, sharedLevel);
});

test(`same-name RunPodSandbox races, and ${WAYS} creates outliving their deadline, each end with one pod per name`, { timeout: 300_000 }, async (t) => {
  const env = await setUpDurEnv();
  t.after(() => env.cleanup());
  const c = env.d.client;
  const sharedLevel = `same${randomBytes(2).toString('hex')}`;
  const parent = `${env.cgroupRoot}/${sharedLevel}`;

  // 10 names, each asked for three times at once: 30 calls in flight.
  const cfgs = Array.from({ length: 10 }, (_, i) => loadPodConfig(env, `same${i}`, parent));
  const calls = cfgs.flatMap((cfg, i) => [0, 1, 2].map(() => ({ cfg, i })));
  const runs = await Promise.allSettled(calls.map(({ cfg }) => c.call('RunPodSandbox', { config: cfg })));
  const byName = new Map<number, Set<string>>();
  runs.forEach((r, k) => {
    if (r.status === 'fulfilled') {
      const set = byName.get(calls[k]!.i) ?? new Set<string>();
      set.add(r.value.podSandboxId);
      byName.set(calls[k]!.i, set);
      return;
    }
    const e = r.reason as CriCallError;
    assert.ok(e instanceof CriCallError && e.code === status.ALREADY_EXISTS && /reserved/.test(e.message), `a loser is told the name is taken: ${String(e)}`);
  });
  for (let i = 0; i < 10; i++) assert.equal(byName.get(i)?.size, 1, `one pod for name same${i}`);
  const racedPods = [...byName.values()].map((s) => [...s][0]!);
  assert.deepEqual((await c.call('ListPodSandbox', {})).items.map((p) => p.id).sort(), [...racedPods].sort());
  assert.deepEqual(inventory(env).ipamIds.sort(), [...racedPods].sort(), 'one IP per pod, none for the losers');

  // 10 pods wanting one host port at once: one gets it, the others are told who has it.
  const port = portBase();
  const wanting = Array.from({ length: WAYS }, (_, i) => loadPodConfig(env, `port${i}`, parent, port));
  const claims = await Promise.allSettled(wanting.map((cfg) => c.call('RunPodSandbox', { config: cfg })));
  const owners = values(claims).map((r) => r.podSandboxId);
  assert.equal(owners.length, 1, 'one pod holds the port');
  for (const r of claims) {
    if (r.status === 'fulfilled') continue;
    assert.ok(r.reason instanceof CriCallError && r.reason.code === status.FAILED_PRECONDITION && /already mapped/.test(r.reason.message), String(r.reason));
  }
  assert.deepEqual(inventory(env).ipamIds.sort(), [...racedPods, ...owners].sort(), 'the refused pods took no IP');
  await tearDownOne(env, { pod: owners[0]! });

  // 10 RunPodSandbox whose CNI ADD takes 3 s, each caller giving up after 1 s; then
  // kubelet's retries with the same metadata get the pods that finished late.
  const late = Array.from({ length: WAYS }, (_, i) => loadPodConfig(env, `late${i}`, parent));
  env.cni.arm('bridge', 'ADD', 'slow:3');
  const firsts = await Promise.allSettled(late.map((cfg) => c.call('RunPodSandbox', { config: cfg }, { timeoutMs: 1000 })));
  env.cni.disarm('bridge');
  for (const r of firsts) {
    assert.equal(r.status, 'rejected', 'the slowed call beat its deadline');
    const e = (r as PromiseRejectedResult).reason;
    assert.ok(e instanceof CriCallError && e.code === status.DEADLINE_EXCEEDED, String(e));
  }
  const retried = await Promise.all(
    late.map(async (cfg) => {
      for (let attempt = 0; ; attempt++) {
        try {
          return (await c.call('RunPodSandbox', { config: cfg })).podSandboxId;
        } catch (err) {
          // While the first call is still building the pod, its name is reserved.
          if (!(err instanceof CriCallError) || err.code !== status.ALREADY_EXISTS || attempt > 100) throw err;
          await new Promise((r) => setTimeout(r, 300));
        }
      }
    }),
  );
  assert.equal(new Set(retried).size, WAYS, 'a pod per name');
  const listed = (await c.call('ListPodSandbox', {})).items;
  assert.equal(listed.length, 10 + WAYS, 'no pod made twice for one name');
  assert.deepEqual(inventory(env).ipamIds.sort(), listed.map((p) => p.id).sort());

  assert.deepEqual(failures(await pool([...racedPods, ...retried], WAYS, (pod) => tearDownOne(env, { pod }))), []);
  assertNothingLeft(env, sharedLevel);
});

test('one image pulled by many clients at once, and pulls racing its removal, leave one intact copy', { timeout: 300_000 }, async (t) => {
  const env = await setUpDurEnv();
  t.after(() => env.cleanup());
  // Four layers (busybox and three of 2 MB of noise each) so downloads and unpacks overlap.
  const image = await pushBusyboxImage(env.reg.host, 'load/multi', 'v1', {
    layers: [1, 2, 3].map((n) => ({ entries: [{ path: `data/layer${n}`, content: randomBytes(2 << 20) }] })),
  });
  const clients = Array.from({ length: WAYS }, () => new CriClient(`unix://${env.d.socket}`));
  t.after(() => clients.forEach((cl) => cl.close()));
  const imagesDir = join(env.d.root, 'images');
  const hex = (d: string) => d.slice('sha256:'.length);
  // A chain id is sha256 over "<parent chain id> <diff id>"; each names one unpacked dir.
  const chainIds: string[] = [];
  for (const [i, l] of image.layers.entries()) {
    chainIds.push(i === 0 ? l.diffId : `sha256:${createHash('sha256').update(`${chainIds[i - 1]} ${l.diffId}`).digest('hex')}`);
  }
  const intact = () => {
    const blobs = readdirSync(join(imagesDir, 'blobs', 'sha256'));
    for (const d of [image.digest, image.configDigest, ...image.layers.map((l) => l.digest)]) assert.ok(blobs.includes(hex(d)), `blob ${d} is stored`);
    assert.ok(existsSync(join(imagesDir, 'layers', hex(chainIds[0]!), 'bin', 'busybox')), 'the base layer is unpacked');
    for (const n of [1, 2, 3]) assert.ok(existsSync(join(imagesDir, 'layers', hex(chainIds[n]!), 'data', `layer${n}`)), `layer ${n} is unpacked`);
  };
  const noScraps = () => {
    assert.deepEqual(readdirSync(join(imagesDir, 'ingest')), [], 'no partial download is left');
    assert.deepEqual(readdirSync(join(imagesDir, 'layers')).filter((n) => n.startsWith('.')), [], 'no partial unpack is left');
  };

  const pulls = await Promise.allSettled(clients.map((cl) => cl.call('PullImage', { image: { image: image.ref } })));
  assert.deepEqual(failures(pulls), []);
  assert.deepEqual([...new Set(values(pulls).map((p) => p.imageRef))], [image.configDigest], 'every pull got the same image');
  const listed = (await env.d.client.call('ListImages', {})).images.filter((i) => i.id === image.configDigest);
  assert.equal(listed.length, 1, 'listed once');
  intact();
  noScraps();

  // Pulls and removals of it racing: every call succeeds, and whenever the image is
  // listed afterwards everything it needs is there.
  for (let round = 0; round < 5; round++) {
    const ops = await Promise.allSettled([
      ...clients.map((cl) => cl.call('PullImage', { image: { image: image.ref } })),
      env.d.client.call('RemoveImage', { image: { image: image.ref } }),
    ]);
    assert.deepEqual(failures(ops), [], `round ${round}`);
    const st = await env.d.client.call('ImageStatus', { image: { image: image.ref } });
    if (st.image) intact();
    noScraps();
  }
  await env.d.client.call('PullImage', { image: { image: image.ref } });
  intact();

  // CreateContainer racing RemoveImage of its image, 10 creates at a time: the
  // removal is refused (the image is held) or the creates that come after it are told
  // the image is gone; never a container over layers that were swept away.
  const podCfgs = Array.from({ length: WAYS }, (_, i) => env.podConfig(`reader${i}`));
  const readers = await Promise.all(podCfgs.map(async (cfg) => (await env.d.client.call('RunPodSandbox', { config: cfg })).podSandboxId));
  let created = 0;
  let removed = 0;
  for (let round = 0; round < 3; round++) {
    await env.d.client.call('PullImage', { image: { image: image.ref } });
    const creates = readers.map((pod, i) =>
      env.d.client.call('CreateContainer', {
        podSandboxId: pod,
        config: { metadata: { name: 'reader', attempt: round }, image: { image: image.ref }, command: ['sleep', '3600'], logPath: `reader/${round}.log` },
        sandboxConfig: podCfgs[i]!,
      }),
    );
    // Round 0 removes at once (creates find it gone); later rounds once a create has
    // mounted its rootfs from the image's layers (conmon slowed so the creates are
    // still under way), when only holding the image keeps the removal off them.
    if (round > 0) {
      env.fp.arm('conmon', '*', 'slow:1');
      await until(() => mountLines(env.dir).some((l) => l.includes(' - overlay ')), 'a create mounted its rootfs');
    }
    const removal = env.d.client.call('RemoveImage', { image: { image: image.ref } });
    const [rm, ...cs] = await Promise.allSettled([removal, ...creates]);
    env.fp.disarm('conmon');
    const ctrs = values(cs).map((r) => r.containerId);
    for (const r of cs) {
      if (r.status === 'rejected') assert.ok(r.reason instanceof CriCallError && r.reason.code === status.NOT_FOUND, `a create refused clearly: ${String(r.reason)}`);
    }
    if (rm!.status === 'rejected') {
      assert.ok(rm.reason instanceof CriCallError && rm.reason.code === status.FAILED_PRECONDITION, `the removal refused clearly: ${String(rm.reason)}`);
    } else {
      removed++;
      assert.deepEqual(ctrs, [], 'no container was made from an image that was removed');
    }
    created += ctrs.length;
    if (ctrs.length > 0) {
      intact();
      for (const ctr of ctrs) {
        await env.d.client.call('StartContainer', { containerId: ctr });
        const r = await env.d.client.call('ExecSync', { containerId: ctr, cmd: ['wc', '-c', '/data/layer3'], timeout: 10n });
        assert.match(Buffer.from(r.stdout).toString(), /^\s*2097152 /, 'the container reads its top layer');
      }
    }
    await Promise.all(ctrs.map(async (ctr) => {
      await env.d.client.call('StopContainer', { containerId: ctr, timeout: 0n });
      await env.d.client.call('RemoveContainer', { containerId: ctr });
    }));
  }
  t.diagnostic(`create vs remove: ${created} containers created, image removed in ${removed} of 3 rounds`);
  assert.deepEqual(failures(await pool(readers, WAYS, (pod) => tearDownOne(env, { pod }))), []);
  noScraps();
  assert.deepEqual(inventory(env), emptyInventory());
});

test('a burst of 40 RunPodSandbox with a short deadline: each succeeds or fails clearly; retries get their pods; nothing half-made', { timeout: 600_000 }, async (t) => {
  const env = await setUpDurEnv();
  t.after(() => env.cleanup());
  const c = env.d.client;
  const sharedLevel = `burst${randomBytes(2).toString('hex')}`;
  const parent = `${env.cgroupRoot}/${sharedLevel}`;
  const cfgs = Array.from({ length: 40 }, (_, i) => loadPodConfig(env, `burst${i}`, parent));
  // All 40 at once, more than two cores do in 2 s.
  const firsts = await Promise.allSettled(cfgs.map((cfg) => c.call('RunPodSandbox', { config: cfg }, { timeoutMs: 2000 })));
  const codes = new Map<string, number>();
  for (const r of firsts) {
    const k = r.status === 'fulfilled' ? 'OK' : status[(r.reason as CriCallError).code] ?? String(r.reason);
    codes.set(k, (codes.get(k) ?? 0) + 1);
  }
  t.diagnostic(`burst of 40 with a 2 s deadline: ${JSON.stringify(Object.fromEntries(codes))}`);
  for (const r of firsts) {
    if (r.status === 'fulfilled') continue;
    const e = r.reason;
    assert.ok(e instanceof CriCallError && (e.code === status.DEADLINE_EXCEEDED || e.code === status.RESOURCE_EXHAUSTED), `a clear failure: ${String(e)}`);
  }
  await c.call('Version', {});
  // kubelet retries until it has a pod for each name.
  const pods = await Promise.all(
    cfgs.map(async (cfg, i) => {
      const r = firsts[i]!;
      if (r.status === 'fulfilled') return r.value.podSandboxId;
      for (let attempt = 0; ; attempt++) {
        try {
          return (await c.call('RunPodSandbox', { config: cfg }, { timeoutMs: 60_000 })).podSandboxId;
        } catch (err) {
          if (!(err instanceof CriCallError) || err.code !== status.ALREADY_EXISTS || attempt > 200) throw err;
          await new Promise((res) => setTimeout(res, 300));
        }
      }
    }),
  );
  const listed = (await c.call('ListPodSandbox', {})).items;
  assert.equal(new Set(pods).size, 40);
  assert.deepEqual(listed.map((p) => p.id).sort(), [...pods].sort(), 'one pod per name, none half-made');
  assert.ok(listed.every((p) => p.state === PodSandboxState.SANDBOX_READY));
  assert.deepEqual(inventory(env).ipamIds.sort(), [...pods].sort());
  assert.deepEqual(failures(await pool(pods, WAYS, (pod) => tearDownOne(env, { pod }))), []);
  assertNothingLeft(env, sharedLevel);
});

