// gVisor (runsc) pods end to end, beyond what the suites run under CRICKET_TEST_HANDLER
// check for every handler: a runsc pod serving HTTP on its IP and a hostPort, the
// gVisor kernel inside, ONE sandbox for all the pod's containers (a shared process
// table in PID mode POD, localhost, logs and exit codes through the joining
// containers' holders), stats, a daemon SIGKILL survived, nothing left after removal
// (runsc sandbox, gofer and holder processes, runsc state, mounts, netns, veths, IPs,
// cgroups), and the handler errors (unknown, missing or failing binary, what gVisor
// cannot do).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { randomInt } from 'node:crypto';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { CriCallError } from '../../src/client/cri-client.js';
import { ContainerState, MountPropagation, NamespaceMode, PodSandboxState, Protocol } from '../../src/gen/runtime/v1/api.js';
import { RUNSC_HANDLER_TOML } from '../helpers/handler.js';
import { emptyInventory, inventory, setUpDurEnv, type DurEnv } from './durability-env.js';

const code = (p: Promise<unknown>) => p.then(() => 'ok', (e: CriCallError) => `${status[e.code]}: ${e.details}`);

function httpGet(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = get(url, { timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (b: Buffer) => (body += b.toString()));
      res.on('end', () => resolve(body));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url}`)));
    req.on('error', reject);
  });
}

/** runsc processes (sandbox, gofer, and any runsc call) whose command line mentions the test dir. */
function runscProcesses(under: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const argv = readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0');
      if (argv[0]?.includes('runsc') && argv.some((a) => a.includes(under))) out.push(`${e} ${argv.slice(0, 4).join(' ')}`);
    } catch {
      // gone
    }
  }
  return out;
}

/** The gVisor sandbox processes (runsc boot) under the test dir: one per pod. */
function sandboxProcesses(under: string): string[] {
  return runscProcesses(under).filter((p) => p.split(' ').includes('boot') || p.includes('runsc-sandbox'));
}

/** The holders of joining containers (bin/cricket-runsc-join create) under the test dir. */
function holderProcesses(under: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const argv = readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0');
      if (argv.some((a) => a.endsWith('cricket-runsc-join')) && argv.some((a) => a.includes(under))) out.push(`${e} ${argv.join(' ').slice(0, 200)}`);
    } catch {
      // gone
    }
  }
  return out;
}

async function waitExited(env: DurEnv, id: string) {
  for (let i = 0; i < 800; i++) {
    const s = (await env.d.client.call('ContainerStatus', { containerId: id })).status!;
    if (s.state === ContainerState.CONTAINER_EXITED) return s;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`container ${id} did not exit`);
}

async function waitRunning(env: DurEnv, id: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    const s = (await env.d.client.call('ContainerStatus', { containerId: id })).status!;
    if (s.state === ContainerState.CONTAINER_RUNNING) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`container ${id} did not run`);
}

/** Polls until the server inside the pod answers (a wait on the server, not a timing assertion). */
async function waitHttp(url: string): Promise<string> {
  let last: unknown;
  for (let i = 0; i < 200; i++) {
    try {
      return await httpGet(url);
    } catch (err) {
      last = err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw last;
}

test('a runsc pod serves HTTP on its IP and a hostPort, runs the gVisor kernel, survives a daemon SIGKILL and leaves nothing', { timeout: 240_000 }, async (t) => {
  const env = await setUpDurEnv({ extraToml: RUNSC_HANDLER_TOML });
  t.after(() => env.cleanup());
  const c = () => env.d.client;
  const hostPort = randomInt(20000, 40000);
  const podCfg = { ...env.podConfig('gvisor'), portMappings: [{ protocol: Protocol.TCP, containerPort: 8080, hostPort }] };
  const { podSandboxId: pod } = await c().call('RunPodSandbox', { config: podCfg, runtimeHandler: 'runsc' });
  const ps = (await c().call('PodSandboxStatus', { podSandboxId: pod })).status!;
  assert.equal(ps.runtimeHandler, 'runsc');
  const ip = ps.network!.ip;
  assert.ok(ip.startsWith(`${env.net.subnetPrefix}.`), ip);

  // Containers asking for the pod's PID namespace share the sandbox's.
  const podPid = { linux: { securityContext: { namespaceOptions: { pid: NamespaceMode.POD } } } };
  const web = { ...env.ctrConfig('web', ['sh', '-c', 'mkdir -p /www && echo hello-from-gvisor > /www/index.html && exec httpd -f -p 8080 -h /www']), ...podPid };
  const { containerId: ctr } = await c().call('CreateContainer', { podSandboxId: pod, config: web, sandboxConfig: podCfg });
  await c().call('StartContainer', { containerId: ctr });
  await waitRunning(env, ctr);
  assert.equal(await waitHttp(`http://${ip}:8080/`), 'hello-from-gvisor\n', 'the host reaches the pod IP');
  assert.equal(await waitHttp(`http://${env.net.gateway}:${hostPort}/`), 'hello-from-gvisor\n', 'the hostPort forwards into the pod');

  // The container's kernel is gVisor's, not the host's.
  const dmesg = await c().call('ExecSync', { containerId: ctr, cmd: ['dmesg'], timeout: 30n });
  assert.equal(dmesg.exitCode, 0);
  assert.match(dmesg.stdout.toString(), /gVisor/);
  const uname = await c().call('ExecSync', { containerId: ctr, cmd: ['uname', '-r'], timeout: 30n });
  assert.notEqual(uname.stdout.toString().trim(), readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim());

  // A second container joins the same sandbox: it sees the first one's processes, and
  // logs through conmon (lines written before and after a daemon SIGKILL).
  const side = { ...env.ctrConfig('side', ['sh', '-c', 'trap "echo bye; exit 3" TERM; echo hi; while true; do sleep 0.1; done']), ...podPid };
  const { containerId: sideId } = await c().call('CreateContainer', { podSandboxId: pod, config: side, sandboxConfig: podCfg });
  await c().call('StartContainer', { containerId: sideId });
  await waitRunning(env, sideId);
  const table = await c().call('ExecSync', { containerId: sideId, cmd: ['ps', '-o', 'comm'], timeout: 30n });
  assert.match(table.stdout.toString(), /httpd/, 'PID mode POD: one process table for the pod');
  assert.match(table.stdout.toString(), /catatonit/, "the pod's infra process is the sandbox's init");
  // A low port: the sandbox binds its containers' host sockets with the infra spec's capabilities.
  const low = await c().call('ExecSync', { containerId: sideId, cmd: ['httpd', '-p', '80', '-h', '/'], timeout: 30n });
  assert.equal(low.exitCode, 0, `bind to port 80: ${low.stderr.toString()}`);
  const own = { ...env.ctrConfig('own', ['sh', '-c', 'ps -o comm; exit 4']), linux: { securityContext: { namespaceOptions: { pid: NamespaceMode.CONTAINER } } } };
  const { containerId: ownId } = await c().call('CreateContainer', { podSandboxId: pod, config: own, sandboxConfig: podCfg });
  await c().call('StartContainer', { containerId: ownId });
  const ownSt = await waitExited(env, ownId);
  assert.equal(ownSt.exitCode, 4);
  assert.doesNotMatch(readFileSync(ownSt.logPath, 'utf8'), /httpd/, 'PID mode CONTAINER: its own process table');
  assert.match(readFileSync(ownSt.logPath, 'utf8'), /stdout F ps/);

  const cs = (await c().call('ContainerStats', { containerId: ctr })).stats!;
  assert.ok((cs.memory?.workingSetBytes?.value ?? 0n) > 0n, "gVisor counts the container's memory");
  // CPU time of the one that keeps running a loop (an idle httpd may have next to none).
  const sideStats = (await c().call('ContainerStats', { containerId: sideId })).stats!;
  assert.ok((sideStats.cpu?.usageCoreNanoSeconds?.value ?? 0n) > 0n, "gVisor counts the container's CPU time");
  const pstats = (await c().call('PodSandboxStats', { podSandboxId: pod })).stats!;
  assert.ok((pstats.linux?.network?.defaultInterface?.rxBytes?.value ?? 0n) > 0n, 'eth0 received the requests');
  assert.ok((pstats.linux?.memory?.workingSetBytes?.value ?? 0n) > 0n, 'the pod cgroup holds the sandbox');
  assert.equal(sandboxProcesses(env.dir).length, 1, `one gVisor sandbox for the pod's three containers: ${runscProcesses(env.dir).join('; ')}`);

  // SIGKILL the daemon: the pod and its containers keep running, and are found again.
  const pidBefore = (await c().call('ContainerStatus', { containerId: ctr })).status!;
  await env.kill();
  assert.equal(await httpGet(`http://${ip}:8080/`), 'hello-from-gvisor\n', 'served while the daemon is down');
  await env.restart();
  const after = (await c().call('ContainerStatus', { containerId: ctr })).status!;
  assert.equal(after.state, ContainerState.CONTAINER_RUNNING);
  assert.equal(after.startedAt, pidBefore.startedAt);
  assert.equal((await c().call('ContainerStatus', { containerId: sideId })).status!.state, ContainerState.CONTAINER_RUNNING);
  assert.equal((await c().call('PodSandboxStatus', { podSandboxId: pod })).status!.state, PodSandboxState.SANDBOX_READY);
  const echo = await c().call('ExecSync', { containerId: ctr, cmd: ['cat', '/www/index.html'], timeout: 30n });
  assert.equal(echo.stdout.toString(), 'hello-from-gvisor\n', 'exec works after the restart');

  // A container started after the restart joins the same sandbox and reaches the first on localhost.
  const peer = env.ctrConfig('peer', ['sh', '-c', 'wget -q -O - http://127.0.0.1:8080/; exit 5']);
  const { containerId: p2 } = await c().call('CreateContainer', { podSandboxId: pod, config: peer, sandboxConfig: podCfg });
  await c().call('StartContainer', { containerId: p2 });
  const s2 = await waitExited(env, p2);
  assert.equal(s2.exitCode, 5);
  assert.match(readFileSync(s2.logPath, 'utf8'), /stdout F hello-from-gvisor/, 'localhost of the pod reaches the other container');
  assert.equal(sandboxProcesses(env.dir).length, 1, 'still one sandbox');

  // A created-never-started container is removed at once (runsc will not signal it).
  const idle = env.ctrConfig('idle', ['sleep', '100']);
  const { containerId: p3 } = await c().call('CreateContainer', { podSandboxId: pod, config: idle, sandboxConfig: podCfg });
  await c().call('RemoveContainer', { containerId: p3 });

  // Stopped after the restart: its exit code and its last words, through the holder conmon kept.
  await c().call('StopContainer', { containerId: sideId, timeout: 10n });
  const sideSt = (await c().call('ContainerStatus', { containerId: sideId })).status!;
  assert.equal(sideSt.exitCode, 3, 'the TERM trap ran');
  const sideLog = readFileSync(sideSt.logPath, 'utf8');
  assert.match(sideLog, /stdout F hi\n/);
  assert.match(sideLog, /stdout F bye\n/);

  await c().call('StopContainer', { containerId: ctr, timeout: 10n });
  const stopped = (await c().call('ContainerStatus', { containerId: ctr })).status!;
  assert.equal(stopped.state, ContainerState.CONTAINER_EXITED);
  assert.equal(stopped.exitCode, 143, 'httpd ends on the SIGTERM');

  await env.removeAll();
  assert.deepEqual(inventory(env), emptyInventory());
  assert.deepEqual(runscProcesses(env.dir), [], 'no runsc sandbox or gofer is left');
  assert.deepEqual(holderProcesses(env.dir), [], 'no holder of a joining container is left');
  const runscRoot = join(env.daemonDir, 'run', 'runsc');
  assert.deepEqual(existsSync(runscRoot) ? readdirSync(runscRoot) : [], [], 'no runsc state is left');
});

test('handler errors: unknown handler, missing or failing binary, and what gVisor cannot do', { timeout: 120_000 }, async (t) => {
  const broken = join('/tmp', `cricket-broken-runsc-${process.pid}`);
  writeFileSync(broken, '#!/bin/sh\necho "runsc: this binary is broken on purpose" >&2\nexit 3\n');
  chmodSync(broken, 0o755);
  t.after(() => rmSync(broken, { force: true }));
  const extraToml = [
    RUNSC_HANDLER_TOML,
    `[runtime.handlers.gone]\npath = "/nonexistent/runsc"\nruntime_type = "sandbox"`,
    `[runtime.handlers.broken]\npath = ${JSON.stringify(broken)}\nruntime_type = "sandbox"`,
  ].join('\n');
  const env = await setUpDurEnv({ extraToml });
  t.after(() => env.cleanup());
  const c = env.d.client;
  const cfg = env.podConfig('bad');

  assert.match(await code(c.call('RunPodSandbox', { config: cfg, runtimeHandler: 'kata' })), /^INVALID_ARGUMENT: .*"kata".*broken, gone, runc, runsc/);
  assert.match(await code(c.call('RunPodSandbox', { config: cfg, runtimeHandler: 'gone' })), /^FAILED_PRECONDITION: runtime handler "gone" cannot run: .*no such file/);
  assert.match(await code(c.call('RunPodSandbox', { config: cfg, runtimeHandler: 'broken' })), /^FAILED_PRECONDITION: .*this binary is broken on purpose/);

  const st = await c.call('Status', {});
  const cond = (type: string) => st.status!.conditions.find((x) => x.type === type);
  assert.equal(cond('RuntimeReady')?.status, true, 'the default handler works');
  assert.equal(cond('RuntimeHandlerReady/runsc')?.status, true);
  assert.equal(cond('RuntimeHandlerReady/gone')?.status, false);
  assert.equal(cond('RuntimeHandlerReady/broken')?.status, false);
  assert.match(cond('RuntimeHandlerReady/broken')!.message, /broken on purpose/);
  const feat = st.runtimeHandlers.find((h) => h.name === 'runsc');
  assert.equal(feat?.features?.recursiveReadOnlyMounts, true, "gVisor makes read-only binds recursive (critest's rro specs pass)");

  const hostPid = { ...cfg, linux: { ...cfg.linux, securityContext: { namespaceOptions: { network: NamespaceMode.POD, pid: NamespaceMode.NODE, ipc: NamespaceMode.POD } } } };
  assert.match(await code(c.call('RunPodSandbox', { config: hostPid, runtimeHandler: 'runsc' })), /^INVALID_ARGUMENT: .*host PID namespace/);
  assert.deepEqual(inventory(env).podRunDirs, [], 'refused pods leave nothing');

  const { podSandboxId: pod } = await c.call('RunPodSandbox', { config: cfg, runtimeHandler: 'runsc' });
  const target = { ...env.ctrConfig('target', ['true']), linux: { securityContext: { namespaceOptions: { pid: NamespaceMode.TARGET, targetId: 'f'.repeat(64) } } } };
  assert.match(await code(c.call('CreateContainer', { podSandboxId: pod, config: target, sandboxConfig: cfg })), /^INVALID_ARGUMENT: .*PID namespace \(TARGET\)/);
  const rshared = { ...env.ctrConfig('rshared', ['true']), mounts: [{ containerPath: '/m', hostPath: env.dir, propagation: MountPropagation.PROPAGATION_BIDIRECTIONAL }] };
  assert.match(await code(c.call('CreateContainer', { podSandboxId: pod, config: rshared, sandboxConfig: cfg })), /^INVALID_ARGUMENT: .*rshared/);
  assert.deepEqual((await c.call('ListContainers', {})).containers, [], 'a refused container leaves nothing');
  assert.deepEqual(inventory(env).ctrDirs, []);
  // (The pod's own sandbox has a cgroup named by the pod id, under the pod's.)
  assert.deepEqual(inventory(env).cgroups.filter((g) => /\/[0-9a-f]{64}$/.test(g) && !g.endsWith(`/${pod}`)), [], 'no container cgroup is left');
  const runscRoot = join(env.daemonDir, 'run', 'runsc');
  assert.deepEqual((existsSync(runscRoot) ? readdirSync(runscRoot) : []).filter((n) => !n.includes(pod)), [], 'no runsc lock or socket is left but the pod sandbox\'s');

  // A privileged pod boots its sandbox with every capability the daemon holds, and its privileged container runs.
  const privCfg = { ...env.podConfig('priv'), linux: { ...env.podConfig('priv').linux, securityContext: { ...env.podConfig('priv').linux!.securityContext, privileged: true } } };
  const { podSandboxId: privPod } = await c.call('RunPodSandbox', { config: privCfg, runtimeHandler: 'runsc' });
  const privCtr = { ...env.ctrConfig('privileged', ['sh', '-c', 'grep CapEff /proc/self/status']), linux: { securityContext: { privileged: true } } };
  const { containerId: privId } = await c.call('CreateContainer', { podSandboxId: privPod, config: privCtr, sandboxConfig: privCfg });
  await c.call('StartContainer', { containerId: privId });
  const privSt = await waitExited(env, privId);
  assert.equal(privSt.exitCode, 0, readFileSync(privSt.logPath, 'utf8'));
  assert.match(readFileSync(privSt.logPath, 'utf8'), /CapEff:\s+0*[0-9a-f]{8,}/);

  // A created, never started container when its pod stops: EXITED, and once the pods
  // are removed nothing of it stays (its holder waited in the sandbox's memory cgroup).
  const { containerId: idleId } = await c.call('CreateContainer', { podSandboxId: pod, config: env.ctrConfig('idle', ['sleep', '100']), sandboxConfig: cfg });
  await c.call('StopPodSandbox', { podSandboxId: pod });
  assert.equal((await c.call('ContainerStatus', { containerId: idleId })).status!.state, ContainerState.CONTAINER_EXITED);
  await env.removeAll();
  assert.deepEqual(holderProcesses(env.dir), []);
  assert.deepEqual(runscProcesses(env.dir), []);
  assert.deepEqual(inventory(env), emptyInventory());
});

test('a daemon SIGKILLed while runsc creates or starts a container: after the restart nothing of it is left once the pod is removed', { timeout: 240_000 }, async (t) => {
  const env = await setUpDurEnv({ extraToml: RUNSC_HANDLER_TOML });
  t.after(() => env.cleanup());
  for (const phase of ['create', 'start'] as const) {
    const podCfg = env.podConfig(`cut-${phase}`);
    const { podSandboxId: pod } = await env.d.client.call('RunPodSandbox', { config: podCfg, runtimeHandler: 'runsc' });
    const cfg = env.ctrConfig(`cut-${phase}`, ['sleep', '1000']);
    let inFlight: Promise<unknown>;
    const before = runscProcesses(env.dir).length;
    if (phase === 'create') {
      inFlight = env.d.client.call('CreateContainer', { podSandboxId: pod, config: cfg, sandboxConfig: podCfg });
    } else {
      const { containerId } = await env.d.client.call('CreateContainer', { podSandboxId: pod, config: cfg, sandboxConfig: podCfg });
      inFlight = env.d.client.call('StartContainer', { containerId });
    }
    inFlight.catch(() => {});
    // Killed once runsc is at work for it (runsc create or start, or a gofer, is up
    // beside the pod's sandbox).
    for (let i = 0; i < 2000 && runscProcesses(env.dir).length <= before; i++) await new Promise((r) => setImmediate(r));
    await env.kill();
    await inFlight.catch(() => {});
    await env.restart();
    const listed = (await env.d.client.call('ListContainers', { filter: { podSandboxId: pod } })).containers;
    assert.ok(listed.length <= 1, `at most the one container: ${listed.length}`);
    await env.removeAll();
    assert.deepEqual(inventory(env), emptyInventory(), `after a SIGKILL during ${phase}`);
    assert.deepEqual(runscProcesses(env.dir), [], `no runsc process left after a SIGKILL during ${phase}`);
    assert.deepEqual(holderProcesses(env.dir), [], `no holder left after a SIGKILL during ${phase}`);
  }
});

test("a runsc pod over its pod cgroup's memory limit: its sandbox is OOM-killed and its containers are reported OOMKilled", { timeout: 240_000 }, async (t) => {
  const env = await setUpDurEnv({ extraToml: RUNSC_HANDLER_TOML });
  t.after(() => env.cleanup());
  const c = env.d.client;
  const podCfg = env.podConfig('oom');
  const { podSandboxId: pod } = await c.call('RunPodSandbox', { config: podCfg, runtimeHandler: 'runsc' });
  // What kubelet does for a pod whose containers all have limits: the pod cgroup gets
  // their sum. gVisor's kernel, gofers and every container of the pod are charged there.
  const memcg = join('/sys/fs/cgroup/memory', podCfg.linux!.cgroupParent!);
  const limit = String(160 << 20);
  writeFileSync(join(memcg, 'memory.limit_in_bytes'), limit);
  if (existsSync(join(memcg, 'memory.memsw.limit_in_bytes'))) writeFileSync(join(memcg, 'memory.memsw.limit_in_bytes'), limit);
  const idle = env.ctrConfig('idle', ['sleep', '1000']);
  const { containerId: idleId } = await c.call('CreateContainer', { podSandboxId: pod, config: idle, sandboxConfig: podCfg });
  await c.call('StartContainer', { containerId: idleId });
  const hog = env.ctrConfig('hog', ['sh', '-c', 'dd if=/dev/zero bs=1M count=1024 2>/dev/null | tail -c 900000000 >/dev/null; echo survived']);
  const { containerId: hogId } = await c.call('CreateContainer', { podSandboxId: pod, config: hog, sandboxConfig: podCfg });
  await c.call('StartContainer', { containerId: hogId });
  for (const id of [hogId, idleId]) {
    const s = await waitExited(env, id);
    assert.equal(s.reason, 'OOMKilled', `${id === hogId ? 'hog' : 'idle'}: ${s.reason} ${s.exitCode} ${s.message}`);
    assert.equal(s.exitCode, 137);
  }
  assert.doesNotMatch(readFileSync((await c.call('ContainerStatus', { containerId: hogId })).status!.logPath, 'utf8'), /survived/);
  // Nothing can run in the pod any more: NOTREADY, so kubelet makes it anew.
  assert.equal((await c.call('PodSandboxStatus', { podSandboxId: pod })).status!.state, PodSandboxState.SANDBOX_NOTREADY);
  await env.removeAll();
  assert.deepEqual(inventory(env), emptyInventory());
  assert.deepEqual(runscProcesses(env.dir), []);
  assert.deepEqual(holderProcesses(env.dir), []);
});
