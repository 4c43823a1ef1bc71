import { Command } from 'commander';
import type { CliIo } from '../cli-io.js';
import { ExitWith, UsageError } from '../exit-codes.js';
import { resolveContainer, resolvePod } from '../resolve.js';
import type { Session } from '../session.js';

/** Runs `fn` for each ref; reports each failure and fails the command after trying all. */
async function eachRef(io: CliIo, refs: string[], fn: (ref: string) => Promise<string>): Promise<void> {
  let failed = false;
  for (const ref of refs) {
    try {
      io.out(`${await fn(ref)}\n`);
    } catch (err) {
      if (refs.length === 1) throw err;
      io.err(`cricket: ${ref}: ${(err as Error).message}\n`);
      failed = true;
    }
  }
  if (failed) throw new ExitWith(1);
}

function seconds(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`--timeout takes whole seconds, not "${v}"`);
  return n;
}

export function stopCommand(io: CliIo): Command {
  return new Command('stop')
    .description('stop running containers (SIGTERM, then SIGKILL after the grace period)')
    .argument('<containers...>', 'names or ids (prefixes too)')
    .option('-t, --timeout <seconds>', 'grace period before SIGKILL', seconds, 10)
    .action(async (refs: string[], opts: { timeout: number }, cmd: Command) => {
      const s = io.session(cmd);
      await eachRef(io, refs, async (ref) => {
        const c = await resolveContainer(s, ref);
        await s.call('StopContainer', { containerId: c.id, timeout: BigInt(opts.timeout) }, s.timeoutMs + opts.timeout * 1000);
        return c.id;
      });
    });
}

export async function removeContainer(s: Session, id: string, force: boolean, running: boolean): Promise<void> {
  if (running) {
    if (!force) throw new UsageError(`container ${id.slice(0, 13)} is running: stop it first, or rm -f`);
    await s.call('StopContainer', { containerId: id, timeout: 0n });
  }
  await s.call('RemoveContainer', { containerId: id });
}

export function rmCommand(io: CliIo): Command {
  return new Command('rm')
    .description('remove containers')
    .argument('[containers...]', 'names or ids (prefixes too)')
    .option('-f, --force', 'stop running ones first (SIGKILL)')
    .option('-a, --all', 'every container')
    .action(async (refs: string[], opts: { force?: boolean; all?: boolean }, cmd: Command) => {
      const s = io.session(cmd);
      if (opts.all) refs = (await s.call('ListContainers', {})).containers.map((c) => c.id);
      else if (refs.length === 0) throw new UsageError('rm needs a container (or -a)');
      await eachRef(io, refs, async (ref) => {
        const c = await resolveContainer(s, ref);
        await removeContainer(s, c.id, opts.force === true, c.state === 1);
        return c.id;
      });
    });
}

export function stoppCommand(io: CliIo): Command {
  return new Command('stopp')
    .description('stop pods: their containers and their network')
    .argument('<pods...>', 'names or ids (prefixes too)')
    .action(async (refs: string[], _opts: unknown, cmd: Command) => {
      const s = io.session(cmd);
      await eachRef(io, refs, async (ref) => {
        const p = await resolvePod(s, ref);
        await s.call('StopPodSandbox', { podSandboxId: p.id }, s.timeoutMs * 6);
        return `Stopped sandbox ${p.id}`;
      });
    });
}

export function rmpCommand(io: CliIo): Command {
  return new Command('rmp')
    .description('remove pods with their containers')
    .argument('[pods...]', 'names or ids (prefixes too)')
    .option('-f, --force', 'stop ready ones first')
    .option('-a, --all', 'every pod')
    .action(async (refs: string[], opts: { force?: boolean; all?: boolean }, cmd: Command) => {
      const s = io.session(cmd);
      if (opts.all) refs = (await s.call('ListPodSandbox', {})).items.map((p) => p.id);
      else if (refs.length === 0) throw new UsageError('rmp needs a pod (or -a)');
      await eachRef(io, refs, async (ref) => {
        const p = await resolvePod(s, ref);
        if (p.state === 0) {
          if (!opts.force && !opts.all) throw new UsageError(`pod ${p.id.slice(0, 13)} is ready: stop it first (stopp), or rmp -f`);
          await s.call('StopPodSandbox', { podSandboxId: p.id }, s.timeoutMs * 6);
        }
        await s.call('RemovePodSandbox', { podSandboxId: p.id }, s.timeoutMs * 6);
        return `Removed sandbox ${p.id}`;
      });
    });
}
