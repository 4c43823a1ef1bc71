// Pods with their own user namespace (hostUsers: false) on real runc: the mapping seen
// from inside, files of the image owned by the pod's root without copies, volumes
// written through idmapped mounts landing as the mapped uid on the host, two pods with
// different mappings kept apart, the bad options refused with kubelet's codes, a daemon
// SIGKILL recovered, and nothing left on the host after removal.
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { CriCallError } from '../../src/client/cri-client.js';
import { ContainerState, NamespaceMode, type ContainerConfig, type DeepPartial, type PodSandboxConfig } from '../../src/gen/runtime/v1/api.js';
import { removeDir, startDaemon, tempDir, type TestDaemon } from '../helpers/daemon.js';
import { pushBusyboxImage, type PushedImage } from '../helpers/oci-image.js';
import { makeTestNet, mountsMentioning, type TestNet } from '../helpers/pod-net.js';
import { imagesConfigToml, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { RUNSC_HANDLER_TOML } from '../helpers/handler.js';
import { spdyAttachSay, spdyForward, spdyUpgrade } from '../helpers/spdy-client.js';

const A = { containerId: 0, hostId: 200_000, length: 65_536 };
const B = { containerId: 0, hostId: 300_000, length: 65_536 };

let dir: string;
let ddir: string;
let logs: string;
let net: TestNet;
let reg: TestRegistry;
let image: PushedImage;
let d: TestDaemon;
let toml: string;

const startD = () => startDaemon({ dir: ddir, args: ['--cni-conf-dir', net.confDir], configToml: toml });

before(async () => {
  dir = tempDir('cricket-userns-');
  // The pod's root is an unprivileged uid on the host: it must be able to walk to the
  // daemon's dirs (runc mounts the rootfs from inside the user namespace), as it can
  // to /run/cricket and /var/lib/cricket; mkdtemp makes 0700.
  chmodSync(dir, 0o711);
  logs = join(dir, 'logs');
  mkdirSync(logs);
  net = makeTestNet(dir);
  reg = await startRegistry();
  image = await pushBusyboxImage(reg.host, 'userns/busybox', 'v1', {
    layers: [{ entries: [{ path: 'etc/rootfile', content: 'root owns me\n', mode: 0o644, uid: 0, gid: 0 }, { path: 'home/app', type: 'directory', mode: 0o755, uid: 1000, gid: 1000 }] }],
  });
  ddir = join(dir, 'daemon');
  mkdirSync(ddir, { mode: 0o711 });
  toml = `${imagesConfigToml(dir, reg.host)}\n[logs]\nallowed_roots = [${JSON.stringify(logs)}]\n${RUNSC_HANDLER_TOML}`;
  d = await startD();
  await d.client.call('PullImage', { image: { image: image.ref } });
});

after(async () => {
  try {
    for (const p of (await d.client.call('ListPodSandbox', {})).items) await d.client.call('RemovePodSandbox', { podSandboxId: p.id }).catch(() => {});
  } catch {
    // daemon gone
  }
  await d?.cleanup();
  await reg?.stop();
  net?.destroy();
  if (dir) removeDir(dir);
});

let seq = 0;
function podConfig(mapping: typeof A | undefined, extra: { pid?: NamespaceMode; mode?: NamespaceMode; uids?: (typeof A)[]; network?: NamespaceMode } = {}): DeepPartial<PodSandboxConfig> {
  const name = `userns${++seq}`;
  const uid = `uid-${name}`;
  const userns = mapping || extra.mode !== undefined ? { mode: extra.mode ?? NamespaceMode.POD, uids: extra.uids ?? (mapping ? [mapping] : []), gids: extra.uids ?? (mapping ? [mapping] : []) } : undefined;
  return {
    metadata: { name, namespace: 'userns-test', uid, attempt: 0 },
    hostname: name,
    logDirectory: join(logs, `userns-test_${name}_${uid}`),
    linux: { securityContext: { namespaceOptions: { network: extra.network ?? NamespaceMode.POD, pid: extra.pid ?? NamespaceMode.CONTAINER, ipc: NamespaceMode.POD, usernsOptions: userns } } },
  };
}

async function runPod(config: DeepPartial<PodSandboxConfig>, runtimeHandler = 'runc'): Promise<{ id: string; config: DeepPartial<PodSandboxConfig> }> {
  const { podSandboxId } = await d.client.call('RunPodSandbox', { config, runtimeHandler });
  return { id: podSandboxId, config };
}

let cseq = 0;
async function runToEnd(pod: { id: string; config: DeepPartial<PodSandboxConfig> }, cmd: string, extra: DeepPartial<ContainerConfig> = {}): Promise<{ id: string; log: string; exitCode: number }> {
  const name = `c${++cseq}`;
  const { containerId } = await d.client.call('CreateContainer', {
    podSandboxId: pod.id,
    config: { metadata: { name, attempt: 0 }, image: { image: image.ref }, command: ['sh', '-c', cmd], logPath: `${name}.log`, ...extra },
    sandboxConfig: pod.config,
  });
  await d.client.call('StartContainer', { containerId });
  const s = await waitState(containerId, ContainerState.CONTAINER_EXITED);
  const log = readFileSync(s.logPath, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(' ').slice(3).join(' '))
    .join('\n');
  return { id: containerId, log, exitCode: s.exitCode };
}

async function waitState(id: string, state: ContainerState) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const s = (await d.client.call('ContainerStatus', { containerId: id })).status!;
    if (s.state === state) return s;
    if (Date.now() > deadline) throw new Error(`container ${id} stayed in state ${s.state}, wanted ${state}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const code = (c: status, re: RegExp) => (e: unknown) => e instanceof CriCallError && e.code === c && re.test(e.message);

async function removePod(id: string): Promise<void> {
  await d.client.call('StopPodSandbox', { podSandboxId: id });
  await d.client.call('RemovePodSandbox', { podSandboxId: id });
}

function assertPodGone(id: string, containerIds: string[]): void {
  assert.equal(mountsMentioning(id), 0, 'no mount mentions the pod (namespaces, user namespace, shm)');
  for (const c of containerIds) assert.equal(mountsMentioning(c), 0, `no mount mentions container ${c} (rootfs, idmapped views)`);
  assert.equal(existsSync(join(d.runRoot, 'pods', id)), false, 'pod run dir removed');
}

test('Status offers user namespaces on runc, not on the gVisor handler', async () => {
  const s = await d.client.call('Status', { verbose: true });
  const byName = new Map(s.runtimeHandlers.map((h) => [h.name, h.features?.userNamespaces]));
  assert.equal(byName.get('runc'), true, s.info['userNamespaces']);
  assert.equal(byName.get(''), true, 'the default handler, listed under ""');
  assert.equal(byName.get('runsc'), false);
  assert.deepEqual(JSON.parse(s.info['userNamespaces']!), { ok: true, reason: '' });
});

test('bad user namespace options are refused with the codes kubelet and critest expect, and nothing is made', async () => {
  const bad: [DeepPartial<PodSandboxConfig>, string, status, RegExp][] = [
    [podConfig(undefined, { mode: NamespaceMode.CONTAINER }), 'runc', status.INVALID_ARGUMENT, /mode CONTAINER is not supported/],
    [podConfig(undefined, { mode: NamespaceMode.TARGET }), 'runc', status.INVALID_ARGUMENT, /mode TARGET is not supported/],
    [podConfig(A, { uids: [A, { ...A, hostId: 400_000 }] }), 'runc', status.INVALID_ARGUMENT, /exactly one uid mapping, got 2/],
    [podConfig(A, { uids: [{ ...A, containerId: 1 }] }), 'runc', status.INVALID_ARGUMENT, /must map container id 0/],
    [podConfig(A, { network: NamespaceMode.NODE }), 'runc', status.INVALID_ARGUMENT, /cannot use the host network/],
    [podConfig(A), 'runsc', status.FAILED_PRECONDITION, /gVisor sandbox\) cannot give a pod its own user namespace/],
  ];
  for (const [config, handler, c, re] of bad) {
    await assert.rejects(runPod(config, handler), code(c, re), `${JSON.stringify(config.linux?.securityContext?.namespaceOptions?.usernsOptions)} on ${handler}`);
  }
  assert.equal((await d.client.call('ListPodSandbox', {})).items.length, 0);
  const podDirs = existsSync(join(d.runRoot, 'pods')) ? readdirSync(join(d.runRoot, 'pods')) : [];
  assert.deepEqual(podDirs.filter((n) => /^[0-9a-f]{64}$/.test(n)), []);
  // NODE is the node's own user namespace.
  const node = await runPod(podConfig(undefined, { mode: NamespaceMode.NODE }));
  const r = await runToEnd(node, 'cat /proc/self/uid_map');
  assert.match(r.log, /^\s*0\s+0\s+4294967295$/m);
  await removePod(node.id);
});

test('a POD user namespace: the mapping inside, image files owned by the pod root without copies, volumes seen through idmapped mounts, pod files owned by its root', async () => {
  const vol = join(dir, 'vol-a');
  mkdirSync(vol, { mode: 0o755 });
  // A mount without mappings is a plain bind: the pod's root is its host uid there.
  const plain = join(dir, 'vol-plain');
  mkdirSync(plain);
  chmodSync(plain, 0o777);
  const pod = await runPod(podConfig(A));
  const r = await runToEnd(
    pod,
    [
      'cat /proc/self/uid_map /proc/self/gid_map',
      'echo ids $(id -u):$(id -g)',
      'stat -c "own %n %u:%g" /etc/rootfile /home/app / /etc/hosts /etc/resolv.conf /etc/hostname /dev/shm /vol',
      'echo written > /vol/out && echo vol-ok',
      'echo plain > /plain/out && echo plain-ok',
      'echo new > /newfile && echo changed >> /etc/rootfile && echo rootfs-ok',
      'touch /dev/shm/x && echo shm-ok',
    ].join('; '),
    {
      mounts: [
        { containerPath: '/vol', hostPath: vol, uidMappings: [A], gidMappings: [A] },
        { containerPath: '/plain', hostPath: plain },
      ],
    },
  );
  assert.equal(r.exitCode, 0, r.log);
  assert.match(r.log, /^\s*0\s+200000\s+65536$/m, 'uid_map and gid_map show the mapping');
  assert.match(r.log, /^ids 0:0$/m);
  for (const f of ['/etc/rootfile', '/', '/etc/hosts', '/etc/resolv.conf', '/etc/hostname', '/dev/shm', '/vol']) assert.match(r.log, new RegExp(`^own ${f} 0:0$`, 'm'), `${f} is the pod root's\n${r.log}`);
  assert.match(r.log, /^own \/home\/app 1000:1000$/m);
  for (const ok of ['vol-ok', 'plain-ok', 'rootfs-ok', 'shm-ok']) assert.match(r.log, new RegExp(`^${ok}$`, 'm'), r.log);
  // On the host. Through the idmapped mount (kubelet's mappings on the mount) the pod's
  // ids are translated back: its root writes as on-disk 0, as it would without a user
  // namespace (the idmap is the pod's, the files keep their meaning across pods and
  // restarts). Through a plain bind it writes as its mapped host uid.
  const out = statSync(join(vol, 'out'));
  assert.deepEqual([out.uid, out.gid], [0, 0], 'the idmapped volume file is on-disk 0 (the pod root seen through the mapping)');
  const p = statSync(join(plain, 'out'));
  assert.deepEqual([p.uid, p.gid], [200_000, 200_000], 'the plain volume file lands as the mapped host uid');
  const layerFiles = findFiles(join(d.root), 'rootfile');
  const inLayer = layerFiles.filter((f) => !f.includes('/upper/'));
  assert.ok(inLayer.length >= 1, `the image layer holds etc/rootfile: ${layerFiles.join(', ')}`);
  for (const f of inLayer) {
    assert.equal(statSync(f).uid, 0, `${f}: the layer is not chown'd`);
    assert.equal(readFileSync(f, 'utf8'), 'root owns me\n', `${f}: the layer is not written`);
  }
  const upper = layerFiles.filter((f) => f.includes('/upper/'));
  assert.equal(upper.length, 1, 'the copy-up is in the container upper layer');
  assert.equal(statSync(upper[0]!).uid, 200_000, 'a copied-up file is the mapped uid on the host');
  assert.equal(statSync(join(upper[0]!, '..', '..', 'newfile')).uid, 200_000, 'a new rootfs file is the mapped uid on the host');
  // The idmapped views (layers and volumes) go before CreateContainer returns; the rootfs
  // overlay goes when the exit is handled, in the background.
  // Mount points only: the rootfs overlay (released in the background once the exit is
  // handled) still names the views' paths in its lowerdir option, though overlay holds
  // clones of its own.
  const views = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => (l.split(' ')[4] ?? '').includes(`${r.id}/idmapped`));
  assert.deepEqual(views, [], 'no idmapped view stays mounted once runc has bound it');
  await d.client.call('RemoveContainer', { containerId: r.id });
  await removePod(pod.id);
  assertPodGone(pod.id, [r.id]);
  assert.equal(readFileSync(join(vol, 'out'), 'utf8'), 'written\n', 'removal does not touch the volume');
});

test("two pods with different mappings cannot write each other's files; an idmapped emptyDir is shared by two containers of a pod", async () => {
  const shared = join(dir, 'vol-shared');
  mkdirSync(shared);
  chmodSync(shared, 0o777);
  const empty = join(dir, 'empty-dir');
  mkdirSync(empty, { mode: 0o755 });
  const a = await runPod(podConfig(A));
  const b = await runPod(podConfig(B));
  const emptyDir = { containerPath: '/cache', hostPath: empty, uidMappings: [A], gidMappings: [A] };
  const w = await runToEnd(a, 'echo from-a > /vol/a && chmod 644 /vol/a && echo first > /cache/f && echo ok', { mounts: [{ containerPath: '/vol', hostPath: shared }, emptyDir] });
  assert.match(w.log, /^ok$/m, w.log);
  assert.equal(statSync(join(shared, 'a')).uid, 200_000);
  const other = await runToEnd(b, 'stat -c "own %u:%g" /vol/a; echo x >> /vol/a && echo wrote; cat /proc/self/uid_map', { mounts: [{ containerPath: '/vol', hostPath: shared }] });
  assert.match(other.log, /^own 65534:65534$/m, `pod B sees pod A's file as nobody\n${other.log}`);
  assert.doesNotMatch(other.log, /^wrote$/m, 'pod B cannot write it');
  assert.match(other.log, /Permission denied/);
  assert.match(other.log, /^\s*0\s+300000\s+65536$/m);
  assert.equal(readFileSync(join(shared, 'a'), 'utf8'), 'from-a\n');
  const again = await runToEnd(a, 'echo more >> /cache/f && cat /cache/f', { mounts: [emptyDir] });
  assert.match(again.log, /^first\nmore$/m, 'a second container of pod A shares the emptyDir and may write it');
  await removePod(a.id);
  await removePod(b.id);
  assertPodGone(a.id, [w.id, again.id]);
  assertPodGone(b.id, [other.id]);
});

test('a shared PID namespace is made inside the user namespace; a daemon SIGKILL is recovered, and removal leaves nothing', { timeout: 120_000 }, async () => {
  const pod = await runPod(podConfig(A, { pid: NamespaceMode.POD }));
  const cache = join(dir, 'sleeper-cache');
  mkdirSync(cache, { mode: 0o755 });
  const name = 'sleeper';
  const { containerId } = await d.client.call('CreateContainer', {
    podSandboxId: pod.id,
    config: {
      metadata: { name, attempt: 0 },
      image: { image: image.ref },
      command: ['sleep', '3600'],
      logPath: `${name}.log`,
      mounts: [{ containerPath: '/cache', hostPath: cache, uidMappings: [A], gidMappings: [A] }],
      linux: { securityContext: { namespaceOptions: { pid: NamespaceMode.POD, network: NamespaceMode.POD, ipc: NamespaceMode.POD } } },
    },
    sandboxConfig: pod.config,
  });
  await d.client.call('StartContainer', { containerId });
  await waitState(containerId, ContainerState.CONTAINER_RUNNING);
  const before = await d.client.call('ExecSync', { containerId, cmd: ['sh', '-c', 'cat /proc/1/comm; cat /proc/self/uid_map'], timeout: 10n });
  assert.match(before.stdout.toString(), /^catatonit$/m, 'pid 1 is the pod init');
  assert.match(before.stdout.toString(), /^\s*0\s+200000\s+65536$/m);
  assert.equal(mountsMentioning(containerId), 1, 'a running container has its rootfs overlay mounted and nothing else (the idmapped layer views are gone)');

  // The daemon's node process itself (bin/cricketd runs it under catatonit), as a crash.
  const pid = Number(readFileSync(join(d.runRoot, 'cricketd.pid'), 'utf8').trim());
  const exited = d.child.exitCode !== null ? Promise.resolve() : once(d.child, 'exit');
  process.kill(pid, 'SIGKILL');
  await exited;
  for (;;) {
    try {
      process.kill(pid, 0);
    } catch {
      break;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  d.client.close();
  d = await startD();
  const ps = (await d.client.call('PodSandboxStatus', { podSandboxId: pod.id })).status!;
  assert.equal(ps.state, 0, 'the pod is READY after the restart');
  assert.equal(ps.linux?.namespaces?.options?.usernsOptions?.mode, NamespaceMode.POD);
  const cs = (await d.client.call('ContainerStatus', { containerId })).status!;
  assert.equal(cs.state, ContainerState.CONTAINER_RUNNING);
  const after = await d.client.call('ExecSync', { containerId, cmd: ['sh', '-c', 'cat /proc/self/uid_map; echo kept > /cache/k && stat -c "own %u" /cache/k'], timeout: 10n });
  assert.match(after.stdout.toString(), /^\s*0\s+200000\s+65536$/m);
  assert.match(after.stdout.toString(), /^own 0$/m, `the idmapped volume still works after the restart: ${after.stderr.toString()}`);
  assert.equal(readFileSync(join(cache, 'k'), 'utf8'), 'kept\n');
  // CNI networking, sysfs (mountable only in a network namespace the pod's root owns) and stats.
  const ip = ps.network?.ip ?? '';
  assert.match(ip, /^\d+\.\d+\.\d+\.\d+$/, 'the pod has its CNI address');
  const netCheck = await d.client.call('ExecSync', { containerId, cmd: ['sh', '-c', 'ip -4 addr show eth0; cat /sys/class/net/eth0/operstate'], timeout: 10n });
  assert.match(netCheck.stdout.toString(), new RegExp(`inet ${ip.replace(/\./g, '\\.')}/`), netCheck.stderr.toString());
  assert.match(netCheck.stdout.toString(), /^up$/m);
  const pstats = (await d.client.call('PodSandboxStats', { podSandboxId: pod.id })).stats!;
  assert.equal(pstats.linux?.network?.defaultInterface?.name, 'eth0', 'pod stats read inside the user-namespaced netns');
  const cstats = (await d.client.call('ContainerStats', { containerId })).stats!;
  assert.ok((cstats.memory?.workingSetBytes?.value ?? 0n) > 0n);
  // A new container after the restart joins the same user namespace.
  const r = await runToEnd(pod, 'cat /proc/self/uid_map; readlink /proc/self/ns/user');
  const theirs = await d.client.call('ExecSync', { containerId, cmd: ['readlink', '/proc/self/ns/user'], timeout: 10n });
  assert.match(r.log, new RegExp(theirs.stdout.toString().trim().replace(/[[\]]/g, '\\$&')), 'both containers are in the one pinned user namespace');

  await removePod(pod.id);
  assertPodGone(pod.id, [containerId, r.id]);
});

test('attach and port-forward work in a user-namespaced pod', async () => {
  const pod = await runPod(podConfig(A));
  const started: string[] = [];
  const start = async (name: string, command: string[], extra: DeepPartial<ContainerConfig> = {}) => {
    const { containerId } = await d.client.call('CreateContainer', {
      podSandboxId: pod.id,
      config: { metadata: { name, attempt: 0 }, image: { image: image.ref }, command, logPath: `${name}.log`, ...extra },
      sandboxConfig: pod.config,
    });
    await d.client.call('StartContainer', { containerId });
    started.push(containerId);
    return containerId;
  };
  const echo = await start('echo', ['sh', '-c', 'while read l; do echo "got:$l"; done'], { stdin: true });
  await start('server', ['nc', '-ll', '-p', '9000', '-e', '/bin/cat']);
  // Attach: stdin in, output out, through conmon's socket.
  const att = await d.client.call('Attach', { containerId: echo, stdin: true, stdout: true });
  assert.match(await spdyAttachSay(att.url, 'hello\n', 'got:hello'), /got:hello/);
  // Port-forward into the pod's network namespace (owned by its user namespace); the
  // server may still be binding, so a refused first try is retried.
  for (let attempt = 0; ; attempt++) {
    const { url } = await d.client.call('PortForward', { podSandboxId: pod.id, port: [9000] });
    const pf = await spdyUpgrade(url, ['portforward.k8s.io']);
    assert.ok(pf.ok);
    if (!pf.ok) return;
    const c = spdyForward(pf.session, 9000, 0);
    c.data.write('ping');
    const got = await Promise.race([
      new Promise<string>((r) => c.data.once('data', (b: Buffer) => r(b.toString()))),
      c.error.then((e) => `error: ${e}`),
    ]);
    pf.session.destroy();
    if (got === 'ping') break;
    assert.ok(attempt < 50, `port-forward answered ${got}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  await removePod(pod.id);
  assertPodGone(pod.id, started);
});

function findFiles(root: string, name: string): string[] {
  const out: string[] = [];
  const walk = (p: string, depth: number) => {
    if (depth > 12) return;
    let entries;
    try {
      entries = readdirSync(p, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const full = join(p, e.name);
      if (e.isDirectory()) walk(full, depth + 1);
      else if (e.name === name) out.push(full);
    }
  };
  walk(root, 0);
  return out;
}
