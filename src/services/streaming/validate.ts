import { failedPrecondition, invalidArgument, notFound } from '../../core/errors.js';
import type { ContainerExecTarget, ContainersArea } from '../containers/api.js';
import type { PodsArea, SandboxView } from '../pods/api.js';
import type { StreamOptions } from '../../streams/spdy-remote-command.js';

/** The checks kubelet expects before a URL is handed out (and again at connect time). */
export function checkStreams(what: string, o: StreamOptions): void {
  if (!o.stdin && !o.stdout && !o.stderr) {
    throw invalidArgument(`${what}: at least one of stdin, stdout or stderr must be requested`);
  }
  if (o.tty && o.stderr) {
    throw invalidArgument(`${what}: tty and stderr cannot both be set (a terminal merges stderr into stdout)`);
  }
}

export function runningContainer(containers: ContainersArea, what: string, id: string): ContainerExecTarget {
  if (!id) throw invalidArgument(`${what}: container_id is required`);
  const t = containers.execTarget(id);
  if (!t) throw notFound(`${what}: container ${JSON.stringify(id)} not found`);
  if (t.state !== 'running') {
    throw failedPrecondition(`${what}: container ${t.id} is ${t.state}, not running`);
  }
  return t;
}

export function readyPod(pods: PodsArea, id: string): SandboxView {
  if (!id) throw invalidArgument('PortForward: pod_sandbox_id is required');
  const p = pods.get(id);
  if (!p) throw notFound(`PortForward: pod sandbox ${JSON.stringify(id)} not found`);
  if (p.state !== 'ready') throw failedPrecondition(`PortForward: pod sandbox ${p.id} is not ready`);
  return p;
}

export function checkPorts(ports: readonly number[]): void {
  for (const p of ports) {
    if (!Number.isInteger(p) || p < 1 || p > 65535) throw invalidArgument(`PortForward: port ${p} is not between 1 and 65535`);
  }
}
