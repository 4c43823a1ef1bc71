import { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { PlayPodStatus } from '../../gen/cricket/v1/cricket.js';
import type { CliIo } from '../cli-io.js';
import { UsageError } from '../exit-codes.js';
import { age } from '../format/human.js';
import { parseFormat, renderData } from '../format/output.js';
import { renderTable } from '../format/table.js';
import type { Session } from '../session.js';

async function printStatus(io: CliIo, s: Session, output: string | undefined): Promise<void> {
  const format = parseFormat(output);
  const { pods } = await s.cricket.playStatus(s.timeoutMs);
  if (format !== 'table') return io.out(await renderData({ pods: pods.map((p) => PlayPodStatus.toJSON(p)) }, format));
  io.out(
    renderTable(
      [{ header: 'NAMESPACE', shrink: true, drop: 1 }, { header: 'NAME', shrink: true }, { header: 'READY' }, { header: 'STATUS' }, { header: 'RESTARTS' }, { header: 'AGE' }],
      pods.map((p) => [p.namespace, p.name, p.ready, p.status, String(p.restarts), age(p.createdAtMs * 1_000_000n)]),
      io.width(),
    ),
  );
}

export function playCommand(io: CliIo): Command {
  return new Command('play')
    .description('run Kubernetes Pod manifests (or a workload\'s pod template): cricketd keeps them running')
    .argument('[file]', 'the YAML file (- for stdin)')
    .option('--down', 'remove the pods the file names')
    .option('--status', 'show the played pods (as cricket get pods)')
    .option('--log-dir <dir>', 'where pod log directories go', '/var/log/pods')
    .option('-o, --output <format>', 'with --status: table, json or yaml', 'table')
    .action(async (file: string | undefined, opts: { down?: boolean; status?: boolean; logDir: string; output?: string }, cmd: Command) => {
      const s = io.session(cmd);
      if (opts.status && file === undefined) return printStatus(io, s, opts.output);
      if (file === undefined) throw new UsageError('play needs a manifest file (or --status)');
      const text = file === '-' ? await readStdin(io) : await readFile(file, 'utf8').catch((err: Error) => {
        throw new UsageError(`cannot read ${file}: ${err.message}`);
      });
      const req = { fileName: file, manifest: text, logDir: resolve(opts.logDir) };
      const r = opts.down ? await s.cricket.playDown(req) : await s.cricket.playApply(req);
      for (const w of r.warnings) io.err(`warning: ${w}\n`);
      // kubectl apply's lines: pod/<namespace>/<name> created | unchanged | recreated | deleted.
      r.pods.forEach((p, i) => io.out(`pod/${p} ${r.actions[i] ?? (opts.down ? 'deleted' : 'played')}\n`));
      if (opts.status) await printStatus(io, s, opts.output);
    });
}

export function getCommand(io: CliIo): Command {
  return new Command('get')
    .description('show played pods as kubectl get pods does: cricket get pods')
    .argument('<what>', 'pods')
    .option('-o, --output <format>', 'table, json or yaml', 'table')
    .action(async (what: string, opts: { output?: string }, cmd: Command) => {
      if (what !== 'pods' && what !== 'pod' && what !== 'po') throw new UsageError(`get: only pods, not "${what}"`);
      await printStatus(io, io.session(cmd), opts.output);
    });
}

async function readStdin(io: CliIo): Promise<string> {
  let text = '';
  for await (const chunk of io.stdin) text += String(chunk);
  return text;
}
