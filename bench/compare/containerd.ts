import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CriClient } from '../../src/client/cri-client.js';
import { makeTestNet } from '../../test/helpers/pod-net.js';
import { pidsWhere } from './procfs.js';
import { releaseHost, removeAllPods, type Runtime } from './runtime.js';

// Debian's containerd (1.6.20) with its CRI plugin, on everything of its own: config,
// root, state, sockets, runc root, CNI conf dir, bridge and subnet, pod netns pins
// (under its state dir), registry hosts dir. Nothing of a containerd a person runs
// (/etc/containerd, /var/lib/containerd, /run/containerd/containerd.sock) is read or
// touched. The one shared place is the shims' socket dir, /run/containerd/s, which
// containerd 1.6 does not let us move: each socket there is named by
// sha256(<our address>/<namespace>/<id>), so the ones we made are known exactly.

const NAMESPACE = 'k8s.io';
const SHIM_SOCKET_DIR = '/run/containerd/s';

export function containerdVersion(): string {
  const r = spawnSync('containerd', ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim().split(' ').slice(2, 3).join(' ') : 'missing';
}

function configToml(dir: string, cniConfDir: string, sandboxImage: string): string {
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  return `version = 2
root = "${dir}/root"
state = "${dir}/state"
oom_score = 0

[grpc]
  address = "${dir}/containerd.sock"

[ttrpc]
  address = "${dir}/containerd.sock.ttrpc"

[debug]
  address = ""
  level = "info"

[metrics]
  address = ""

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "${dir}/opt"

  [${cri}]
    sandbox_image = "${sandboxImage}"
    # root here lacks CAP_SYS_RESOURCE: it may not lower a process's oom_score_adj.
    restrict_oom_score_adj = true
    netns_mounts_under_state_dir = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    enable_selinux = false
    disable_apparmor = true

    [${cri}.cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "${cniConfDir}"
      max_conf_num = 1

    [${cri}.containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"

      [${cri}.containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"

        [${cri}.containerd.runtimes.runc.options]
          BinaryName = "/usr/sbin/runc"
          Root = "${dir}/runc"
          SystemdCgroup = false

    [${cri}.registry]
      config_path = "${dir}/certs.d"
`;
}

/**
 * containerd 1.6 ignores a hosts.toml holding only `server = "http://…"`: a plain HTTP
 * registry needs its own [host."http://…"] section as well.
 */
function writeHostsToml(dir: string, registryHost: string): void {
  const d = join(dir, 'certs.d', registryHost);
  mkdirSync(d, { recursive: true });
  writeFileSync(
    join(d, 'hosts.toml'),
    `server = "http://${registryHost}"\n\n[host."http://${registryHost}"]\n  capabilities = ["pull", "resolve"]\n  skip_verify = true\n`,
  );
}

function shimSocketOf(address: string, id: string): string {
  return join(SHIM_SOCKET_DIR, createHash('sha256').update(join(address, NAMESPACE, id)).digest('hex'));
}

async function waitReady(client: CriClient, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`containerd exited (${child.exitCode ?? child.signalCode}): ${log()}`);
    try {
      const st = await client.call('Status', {}, { timeoutMs: 2000 });
      const ready = (t: string) => st.status?.conditions.find((c) => c.type === t)?.status === true;
      if (ready('RuntimeReady') && ready('NetworkReady')) return;
    } catch {
      // not serving yet
    }
    if (Date.now() > deadline) throw new Error(`containerd not ready within 60 s: ${log()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function startContainerd(base: string, registryHost: string, sandboxImage: string, cgroupRoot: string): Promise<Runtime> {
  const dir = join(base, 'containerd');
  mkdirSync(dir, { recursive: true });
  const net = makeTestNet(dir);
  const logRoot = join(dir, 'logs');
  mkdirSync(logRoot);
  writeHostsToml(dir, registryHost);
  const cfg = join(dir, 'config.toml');
  writeFileSync(cfg, configToml(dir, net.confDir, sandboxImage));
  const address = join(dir, 'containerd.sock');
  const logFile = join(dir, 'containerd.log');
  const shimDirExisted = existsSync(SHIM_SOCKET_DIR);
  const runDirExisted = existsSync('/run/containerd');
  const fd = openSync(logFile, 'a');
  const child = spawn('/usr/bin/containerd', ['--config', cfg], { stdio: ['ignore', fd, fd], env: { ...process.env, PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' } });
  closeSync(fd);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const readLog = () => {
    try {
      return readFileSync(logFile, 'utf8').slice(-4000);
    } catch {
      return '';
    }
  };
  const client = new CriClient(`unix://${address}`);
  const sandboxIds = new Set<string>();
  const isOurShim = (argv: string[]) => argv[0]!.endsWith('containerd-shim-runc-v2') && argv.includes(address);

  const destroy = async (): Promise<string[]> => {
    const left: string[] = [];
    if (child.exitCode === null && child.signalCode === null) {
      try {
        const { items } = await client.call('ListPodSandbox', {}, { timeoutMs: 30_000 });
        for (const p of items) sandboxIds.add(p.id);
        await removeAllPods(client);
      } catch (err) {
        left.push(`removing pods: ${String(err)}`);
      }
    }
    client.close();
    // Only the containerd this bench started, by its pid.
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(t);
    }
    const shims = pidsWhere(isOurShim);
    if (shims.length > 0) {
      left.push(`${shims.length} shims still running (killed)`);
      for (const p of shims) process.kill(p, 'SIGKILL');
      await new Promise((r) => setTimeout(r, 200));
    }
    // Containers whose shim was killed: runc still knows them under our runc root.
    const runcRoot = join(dir, 'runc', NAMESPACE);
    if (existsSync(runcRoot)) {
      for (const id of readdirSync(runcRoot)) {
        spawnSync('/usr/sbin/runc', ['--root', runcRoot, 'delete', '--force', id]);
        left.push(`runc container ${id.slice(0, 12)} (deleted)`);
      }
    }
    for (const id of sandboxIds) {
      const s = shimSocketOf(address, id);
      if (existsSync(s)) {
        rmSync(s, { force: true });
        left.push(`shim socket ${s} (removed)`);
      }
    }
    try {
      if (!shimDirExisted && readdirSync(SHIM_SOCKET_DIR).length === 0) rmdirSync(SHIM_SOCKET_DIR);
      if (!runDirExisted && readdirSync('/run/containerd').length === 0) rmdirSync('/run/containerd');
    } catch {
      // not there, or someone else's sockets: leave it
    }
    left.push(...releaseHost(net, cgroupRoot, dir));
    return left.map((s) => `containerd: ${s}`);
  };

  try {
    await waitReady(client, child, readLog);
  } catch (err) {
    await destroy();
    throw err;
  }
  const pid = child.pid!;
  return {
    name: 'containerd',
    client,
    net,
    logRoot,
    cgroupRoot,
    helperName: 'shims',
    daemonPid: () => pid,
    helperPids: () => pidsWhere(isOurShim),
    destroy,
  };
}
