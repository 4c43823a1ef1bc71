import { Command } from 'commander';
import { dirname, isAbsolute, join } from 'node:path';
import type { CliIo } from '../cli-io.js';
import { UsageError } from '../exit-codes.js';
import { CriLogParser, parseSince, type LogLine } from '../logs/cri-log.js';
import { readRecords } from '../logs/log-reader.js';
import { resolveContainer } from '../resolve.js';
import type { Session } from '../session.js';

export interface LogsOptions {
  follow?: boolean;
  tail?: string;
  since?: string;
  timestamps?: boolean;
  previous?: boolean;
}

/**
 * Prints a container's log as crictl does: read from the file the CRI names (the
 * pod's log directory + the container's log path; this runs on the node). With -f,
 * follows until the container has exited and the file has no more to give, or Ctrl-C.
 */
export async function printLogs(io: CliIo, s: Session, containerId: string, o: LogsOptions): Promise<void> {
  const st = (await s.call('ContainerStatus', { containerId })).status;
  let path = st?.logPath ?? '';
  if (path === '') throw new UsageError(`container ${containerId.slice(0, 13)} has no log file (its pod has no log directory)`);
  if (!isAbsolute(path)) throw new UsageError(`container log path ${path} is not absolute`);
  if (o.previous) {
    // The attempt before this one logged beside it as <attempt-1>.log (kubelet's layout),
    // whether or not that container is still listed.
    const attempt = st?.metadata?.attempt ?? 0;
    if (attempt === 0) throw new UsageError(`container ${containerId.slice(0, 13)} has no previous attempt`);
    path = join(dirname(path), `${attempt - 1}.log`);
  }
  path = join(path);
  const tail = o.tail === undefined || o.tail === '-1' ? -1 : Number(o.tail);
  if (!Number.isInteger(tail) || tail < -1) throw new UsageError(`--tail takes a number of lines, not "${o.tail}"`);
  const since = o.since !== undefined ? parseSince(o.since) : undefined;
  const stop = new AbortController();
  const onSigint = () => stop.abort();
  process.once('SIGINT', onSigint);
  const print = (l: LogLine) => {
    const text = `${o.timestamps ? `${l.time} ` : ''}${l.text}\n`;
    if (l.stream === 'stderr') io.err(text);
    else io.out(text);
  };
  // With -f, a watcher ends the follow once the container has exited (what was
  // written before the exit is still read to the end: the reader drains first).
  const poll = o.follow
    ? setInterval(() => {
        s.call('ContainerStatus', { containerId })
          .then((r) => {
            if (r.status?.state === 2 || r.status?.state === 3) {
              stop.abort();
            }
          })
          .catch(() => {});
      }, 500)
    : undefined;
  try {
    const parser = new CriLogParser();
    // --tail applies to what the file holds when we first reach its end.
    const held: LogLine[] = [];
    let caughtUp = false;
    for await (const rec of readRecords(path, { follow: o.follow === true, stop: stop.signal })) {
      if (rec === null) {
        if (!caughtUp) for (const l of held.splice(0)) print(l);
        caughtUp = true;
        continue;
      }
      const line = parser.push(rec);
      if (!line || (since !== undefined && line.ms < since)) continue;
      if (!caughtUp && tail >= 0) {
        held.push(line);
        if (held.length > tail) held.shift();
      } else print(line);
    }
  } finally {
    if (poll) clearInterval(poll);
    process.off('SIGINT', onSigint);
  }
}

export function logsCommand(io: CliIo): Command {
  return new Command('logs')
    .description("print a container's log")
    .argument('<container>', 'name or id (prefix too)')
    .option('-f, --follow', 'keep printing new lines until the container exits (or Ctrl-C)')
    .option('--tail <lines>', 'only the last N lines (-1: all)')
    .option('--since <when>', 'only lines since a duration ago (10s, 5m, 1h) or an RFC 3339 time')
    .option('--timestamps', "prefix each line with the runtime's timestamp")
    .option('-p, --previous', "the previous attempt's log (a restarted container's last words)")
    .action(async (ref: string, opts: LogsOptions, cmd: Command) => {
      const s = io.session(cmd);
      const c = await resolveContainer(s, ref);
      await printLogs(io, s, c.id, opts);
    });
}
