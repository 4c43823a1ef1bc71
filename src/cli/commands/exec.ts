import { Command } from 'commander';
import type { CliIo } from '../cli-io.js';
import { ExitWith, UsageError } from '../exit-codes.js';
import { localTerminal } from '../remote/terminal.js';
import { resolveContainer } from '../resolve.js';
import type { Session } from '../session.js';

/** Attaches the local terminal to a streaming URL; returns the remote exit code. */
export async function runRemote(io: CliIo, url: string, o: { interactive: boolean; tty: boolean }): Promise<number> {
  // ws is loaded by the commands that stream, not by every run of the CLI.
  const { wsRemoteCommand } = await import('../remote/ws-remote-command.js');
  const term = localTerminal({ stdin: io.stdin, stdout: io.stdout, stderr: io.stderr, ...o });
  try {
    return await wsRemoteCommand(url, term);
  } finally {
    term.restore();
  }
}

export async function execIn(io: CliIo, s: Session, id: string, cmdline: string[], o: { interactive?: boolean; tty?: boolean; sync?: boolean; timeout?: number }): Promise<number> {
  if (o.sync) {
    const r = await s.call('ExecSync', { containerId: id, cmd: cmdline, timeout: BigInt(o.timeout ?? 0) }, s.timeoutMs + (o.timeout ?? 0) * 1000);
    io.stdout.write(r.stdout);
    io.stderr.write(r.stderr);
    return r.exitCode;
  }
  const tty = o.tty === true;
  const interactive = o.interactive === true;
  const { url } = await s.call('Exec', { containerId: id, cmd: cmdline, tty, stdin: interactive, stdout: true, stderr: !tty });
  return runRemote(io, url, { interactive, tty });
}

export function execCommand(io: CliIo): Command {
  return new Command('exec')
    .description('run a command in a running container; exits with its exit code')
    .argument('<container>', 'name or id (prefix too)')
    .argument('<command...>', 'the command and its arguments (options after the container go to the command)')
    .option('-i, --interactive', 'pass stdin to the command')
    .option('-t, --tty', 'a terminal for the command')
    .option('-s, --sync', 'run with ExecSync (no streaming), output printed at the end')
    .option('--timeout <seconds>', 'with --sync: kill the command after this long', (v) => Number(v))
    .passThroughOptions()
    .action(async (ref: string, cmdline: string[], opts: { interactive?: boolean; tty?: boolean; sync?: boolean; timeout?: number }, cmd: Command) => {
      if (cmdline.length === 0) throw new UsageError('exec needs a command to run');
      const s = io.session(cmd);
      const c = await resolveContainer(s, ref);
      if (c.state !== 1) throw new UsageError(`container ${c.id.slice(0, 13)} is not running`);
      const code = await execIn(io, s, c.id, cmdline, opts);
      if (code !== 0) throw new ExitWith(code);
    });
}

export function attachCommand(io: CliIo): Command {
  return new Command('attach')
    .description("attach to a running container's stdio (Ctrl-C ends the container's process when -it)")
    .argument('<container>', 'name or id (prefix too)')
    .option('-i, --stdin', 'pass stdin to the container')
    .option('-t, --tty', 'the container has a terminal')
    .action(async (ref: string, opts: { stdin?: boolean; tty?: boolean }, cmd: Command) => {
      const s = io.session(cmd);
      const c = await resolveContainer(s, ref);
      const tty = opts.tty === true;
      const { url } = await s.call('Attach', { containerId: c.id, tty, stdin: opts.stdin === true, stdout: true, stderr: !tty });
      const code = await runRemote(io, url, { interactive: opts.stdin === true, tty });
      if (code !== 0) throw new ExitWith(code);
    });
}
