import { Command } from 'commander';
import { randomBytes } from 'node:crypto';
import { isAbsolute, join, resolve } from 'node:path';
import { NamespaceMode, Protocol, type ContainerConfig, type DeepPartial, type PodSandboxConfig } from '../../gen/runtime/v1/api.js';
import type { CliIo } from '../cli-io.js';
import { ExitWith, UsageError } from '../exit-codes.js';
import { runRemote } from './exec.js';
import { printLogs } from './logs.js';
import { pullWithProgress } from './pull.js';
import type { Session } from '../session.js';

interface RunOptions {
  interactive?: boolean;
  tty?: boolean;
  rm?: boolean;
  detach?: boolean;
  name?: string;
  namespace: string;
  publish: string[];
  env: string[];
  volume: string[];
  workdir?: string;
  entrypoint?: string;
  net?: string;
  runtime?: string;
  logDir: string;
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

export function parsePublish(spec: string): DeepPartial<PodSandboxConfig>['portMappings'] {
  const m = /^(?:(\d{1,3}(?:\.\d{1,3}){3}):)?(\d+):(\d+)(?:\/(tcp|udp|sctp))?$/.exec(spec);
  if (!m) throw new UsageError(`-p takes [IP:]HOST:CONTAINER[/tcp|udp|sctp], not "${spec}"`);
  const hostPort = Number(m[2]);
  const containerPort = Number(m[3]);
  if (hostPort < 1 || hostPort > 65535 || containerPort < 1 || containerPort > 65535) throw new UsageError(`ports in "${spec}" must be 1-65535`);
  const protocol = m[4] === 'udp' ? Protocol.UDP : m[4] === 'sctp' ? Protocol.SCTP : Protocol.TCP;
  return [{ hostIp: m[1] ?? '', hostPort, containerPort, protocol }];
}

export function parseEnv(spec: string, env: NodeJS.ProcessEnv): { key: string; value: Buffer } {
  const i = spec.indexOf('=');
  // docker's -e NAME passes the variable from here.
  if (i < 0) return { key: spec, value: Buffer.from(env[spec] ?? '') };
  if (i === 0) throw new UsageError(`-e takes KEY=VALUE, not "${spec}"`);
  return { key: spec.slice(0, i), value: Buffer.from(spec.slice(i + 1)) };
}

export function parseVolume(spec: string): { hostPath: string; containerPath: string; readonly: boolean } {
  const parts = spec.split(':');
  if (parts.length < 2 || parts.length > 3 || parts[0] === '' || parts[1] === '') throw new UsageError(`-v takes HOST:CONTAINER[:ro|rw], not "${spec}"`);
  const [src, dst, mode] = parts as [string, string, string | undefined];
  if (mode !== undefined && mode !== 'ro' && mode !== 'rw') throw new UsageError(`-v mode must be ro or rw, not "${mode}"`);
  if (!isAbsolute(dst)) throw new UsageError(`-v: the container path must be absolute, not "${dst}"`);
  return { hostPath: resolve(src), containerPath: dst, readonly: mode === 'ro' };
}

/** Waits (events would be nicer; status is what every runtime answers) until the container has exited; its exit code. */
async function exitCodeWhenDone(s: Session, id: string): Promise<number> {
  for (;;) {
    const st = (await s.call('ContainerStatus', { containerId: id })).status;
    if (!st || st.state === 2 || st.state === 3) return st?.exitCode ?? 1;
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function runCommand(io: CliIo): Command {
  return new Command('run')
    .description('run a command in a new pod and container in one step (docker run habits)')
    .argument('<image>', 'the image (pulled if not here)')
    .argument('[command...]', "the command and its arguments (default: the image's)")
    .option('-i, --interactive', 'pass stdin to the container')
    .option('-t, --tty', 'a terminal for the container')
    .option('--rm', 'remove the pod and container when it exits')
    .option('-d, --detach', 'start it and print its id; do not wait')
    .option('--name <name>', 'the pod and container name (default: run-<random>)')
    .option('--namespace <ns>', 'the pod namespace', 'default')
    .option('-p, --publish <[ip:]host:container>', 'publish a container port on the host (repeatable)', collect, [])
    .option('-e, --env <KEY=VALUE>', 'set an environment variable (repeatable)', collect, [])
    .option('-v, --volume <host:container[:ro]>', 'bind mount a host path (repeatable)', collect, [])
    .option('-w, --workdir <dir>', 'working directory inside the container')
    .option('--entrypoint <cmd>', "override the image's entrypoint")
    .option('--net <mode>', 'network: pod (own namespace, CNI) or host', 'pod')
    .option('--runtime <handler>', 'runtime handler (cricket info lists them)')
    .option('--log-dir <dir>', 'where pod log directories go', '/var/log/pods')
    .passThroughOptions()
    .action(async (image: string, cmdline: string[], opts: RunOptions, cmd: Command) => {
      if (opts.net !== 'pod' && opts.net !== 'host') throw new UsageError(`--net is pod or host, not "${opts.net}"`);
      if (opts.detach && opts.rm) throw new UsageError('--rm and -d do not go together: nothing would be left to remove it');
      const portMappings = opts.publish.flatMap((p) => parsePublish(p) ?? []);
      const envs = opts.env.map((e) => parseEnv(e, io.env));
      const mounts = opts.volume.map(parseVolume);
      const s = io.session(cmd);
      if (!(await s.call('ImageStatus', { image: { image } })).image) await pullWithProgress(io, s, image);
      const name = opts.name ?? `run-${randomBytes(3).toString('hex')}`;
      if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(name) || name.length > 63) throw new UsageError(`--name must be a DNS label (a-z, 0-9, -), not "${name}"`);
      const uid = randomBytes(16).toString('hex');
      const podConfig: DeepPartial<PodSandboxConfig> = {
        metadata: { name, namespace: opts.namespace, uid, attempt: 0 },
        hostname: name,
        logDirectory: join(opts.logDir, `${opts.namespace}_${name}_${uid}`),
        labels: { 'io.cricket.run': 'true' },
        portMappings,
        linux: { securityContext: { namespaceOptions: { network: opts.net === 'host' ? NamespaceMode.NODE : NamespaceMode.POD } } },
      };
      const { podSandboxId } = await s.call('RunPodSandbox', { config: podConfig, runtimeHandler: opts.runtime ?? '' }, s.timeoutMs * 6);
      let removed = false;
      const removePod = async () => {
        if (removed) return;
        removed = true;
        await s.call('StopPodSandbox', { podSandboxId }, s.timeoutMs * 6).catch(() => {});
        await s.call('RemovePodSandbox', { podSandboxId }, s.timeoutMs * 6);
      };
      try {
        const config: DeepPartial<ContainerConfig> = {
          metadata: { name, attempt: 0 },
          image: { image },
          ...(opts.entrypoint !== undefined ? { command: [opts.entrypoint] } : {}),
          args: cmdline,
          envs,
          mounts,
          workingDir: opts.workdir ?? '',
          tty: opts.tty === true,
          stdin: opts.interactive === true,
          stdinOnce: opts.interactive === true,
          logPath: `${name}/0.log`,
          labels: { 'io.cricket.run': 'true' },
        };
        const { containerId } = await s.call('CreateContainer', { podSandboxId, config, sandboxConfig: podConfig }, s.timeoutMs * 6);
        await s.call('StartContainer', { containerId }, s.timeoutMs * 6);
        if (opts.detach) return io.out(`${containerId}\n`);
        if (opts.interactive || opts.tty) {
          const tty = opts.tty === true;
          // The CRI attaches only to a running container, so a quick one may be done
          // before we get there: then what it said is in its log.
          const attach = await s
            .call('Attach', { containerId, tty, stdin: opts.interactive === true, stdout: true, stderr: !tty })
            .catch(async (err: unknown) => {
              const st = (await s.call('ContainerStatus', { containerId })).status;
              if (st?.state === 2) return undefined;
              throw err;
            });
          // It may also end between the URL and the session: then too, its log has it all.
          const attached = attach
            ? await runRemote(io, attach.url, { interactive: opts.interactive === true, tty }).then(
                () => true,
                async (err: unknown) => {
                  if ((await s.call('ContainerStatus', { containerId })).status?.state === 2) return false;
                  throw err;
                },
              )
            : false;
          if (!attached) await printLogs(io, s, containerId, {});
        } else {
          await printLogs(io, s, containerId, { follow: true });
          // Still running: the follow ended with Ctrl-C, which stops the container as docker run does.
          const st = (await s.call('ContainerStatus', { containerId })).status;
          if (st?.state === 1) await s.call('StopContainer', { containerId, timeout: 10n }, s.timeoutMs + 10_000);
        }
        const code = await exitCodeWhenDone(s, containerId);
        if (opts.rm) await removePod();
        if (code !== 0) throw new ExitWith(code);
      } catch (err) {
        // A pod we made for a run that failed to start is not left behind under --rm.
        if (opts.rm) await removePod().catch(() => {});
        throw err;
      }
    });
}
