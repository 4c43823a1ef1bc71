import { Command } from 'commander';
import { ContainerStats } from '../../gen/runtime/v1/api.js';
import type { CliIo } from '../cli-io.js';
import { UsageError } from '../exit-codes.js';
import { bytes, shortId } from '../format/human.js';
import { parseFormat, renderData } from '../format/output.js';
import { renderTable } from '../format/table.js';
import { resolveContainer, resolvePod } from '../resolve.js';
import type { Session } from '../session.js';

interface StatsOptions {
  all?: boolean;
  pod?: string;
  output?: string;
  watch?: boolean;
  seconds: number;
}

type Sample = Map<string, { cpuNs: bigint; at: bigint }>;

/**
 * CPU % over the interval between two samples of cumulative CPU time, as docker
 * stats does (usage_nano_cores when the runtime gives it and there is no earlier sample).
 */
function cpuPercent(st: ContainerStats, prev: Sample): string {
  const id = st.attributes?.id ?? '';
  const now = st.cpu?.usageCoreNanoSeconds?.value;
  const at = st.cpu?.timestamp ?? 0n;
  const p = prev.get(id);
  if (now !== undefined && p && at > p.at) return `${((Number(now - p.cpuNs) / Number(at - p.at)) * 100).toFixed(2)}`;
  const cores = st.cpu?.usageNanoCores?.value;
  return cores !== undefined ? `${(Number(cores) / 1e7).toFixed(2)}` : '-';
}

function sampleOf(stats: readonly ContainerStats[]): Sample {
  const m: Sample = new Map();
  for (const st of stats) {
    const v = st.cpu?.usageCoreNanoSeconds?.value;
    if (v !== undefined && st.attributes) m.set(st.attributes.id, { cpuNs: v, at: st.cpu!.timestamp });
  }
  return m;
}

async function listStats(s: Session, filter: { id?: string; podSandboxId?: string }, all: boolean): Promise<ContainerStats[]> {
  const [{ stats }, { containers }] = await Promise.all([s.call('ListContainerStats', { filter }), s.call('ListContainers', {})]);
  const running = new Set(containers.filter((c) => all || c.state === 1).map((c) => c.id));
  return stats.filter((st) => running.has(st.attributes?.id ?? ''));
}

function table(io: CliIo, stats: readonly ContainerStats[], prev: Sample): string {
  return renderTable(
    [{ header: 'CONTAINER' }, { header: 'NAME', shrink: true }, { header: 'CPU %' }, { header: 'MEM' }, { header: 'DISK' }, { header: 'INODES' }],
    stats.map((st) => [
      shortId(st.attributes?.id ?? ''),
      st.attributes?.metadata?.name ?? '',
      cpuPercent(st, prev),
      bytes(st.memory?.workingSetBytes?.value ?? 0n),
      bytes(st.writableLayer?.usedBytes?.value ?? 0n),
      String(st.writableLayer?.inodesUsed?.value ?? 0n),
    ]),
    io.width(),
  );
}

async function runStats(io: CliIo, cmd: Command, ref: string | undefined, opts: StatsOptions, screen: boolean): Promise<void> {
  const format = parseFormat(opts.output);
  if (!Number.isFinite(opts.seconds) || opts.seconds <= 0) throw new UsageError('--seconds takes a positive number');
  const s = io.session(cmd);
  const filter: { id?: string; podSandboxId?: string } = {};
  if (ref !== undefined) filter.id = (await resolveContainer(s, ref)).id;
  if (opts.pod !== undefined) filter.podSandboxId = (await resolvePod(s, opts.pod)).id;
  const all = opts.all === true || ref !== undefined;
  if (format !== 'table') {
    const stats = await listStats(s, filter, all);
    return io.out(await renderData({ stats: stats.map((st) => ContainerStats.toJSON(st)) }, format));
  }
  // The first picture needs two samples for CPU %: take one, wait the interval, take the next.
  let prev = sampleOf(await listStats(s, filter, all));
  let stop = false;
  const onSigint = () => (stop = true);
  process.once('SIGINT', onSigint);
  try {
    do {
      await new Promise((r) => setTimeout(r, opts.seconds * 1000));
      if (stop) break;
      const stats = await listStats(s, filter, all);
      io.out((screen ? '\x1b[H\x1b[2J' : '') + table(io, stats, prev));
      prev = sampleOf(stats);
    } while (opts.watch && !stop);
  } finally {
    process.off('SIGINT', onSigint);
  }
}

function statsOptions(c: Command): Command {
  return c
    .argument('[container]', 'name or id (prefix too); default: every running container')
    .option('-a, --all', 'stopped containers too')
    .option('-p, --pod <pod>', 'only containers of this pod')
    .option('-o, --output <format>', 'table, json or yaml', 'table')
    .option('-s, --seconds <n>', 'sampling interval in seconds', (v) => Number(v), 1);
}

export function statsCommand(io: CliIo): Command {
  return statsOptions(new Command('stats').description('resource use of containers: CPU %, memory, disk'))
    .option('-w, --watch', 'keep printing a table every interval')
    .action((ref: string | undefined, opts: StatsOptions, cmd: Command) => runStats(io, cmd, ref, opts, false));
}

export function topCommand(io: CliIo): Command {
  return statsOptions(new Command('top').description('a live view of container resource use, redrawn every interval (Ctrl-C ends)')).action(
    (ref: string | undefined, opts: StatsOptions, cmd: Command) => runStats(io, cmd, ref, { ...opts, watch: true }, io.stdout.isTTY === true),
  );
}
