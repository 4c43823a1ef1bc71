import { Command } from 'commander';
import { status } from '@grpc/grpc-js';
import { CriCallError } from '../../client/cri-client.js';
import type { AuthConfig, DeepPartial } from '../../gen/runtime/v1/api.js';
import type { CliIo } from '../cli-io.js';
import { UsageError } from '../exit-codes.js';
import { PullView } from '../format/pull-view.js';
import type { Session } from '../session.js';

export interface PullOptions {
  creds?: string;
  auth?: string;
  quiet?: boolean;
}

/**
 * Pulls with live progress from cricketd's own service; a runtime without it
 * (containerd, CRI-O: UNIMPLEMENTED) gets a plain CRI PullImage. Progress goes to
 * stderr, so stdout carries only the result. Returns the image id.
 */
export async function pullWithProgress(io: CliIo, s: Session, image: string, o: PullOptions = {}): Promise<string> {
  const auth = authOf(o);
  const view = new PullView({ write: (t) => io.err(t), tty: io.stderr.isTTY === true, image });
  const ctl = new AbortController();
  const onSigint = () => ctl.abort();
  process.once('SIGINT', onSigint);
  try {
    let ref = '';
    for await (const p of s.cricket.pullImageProgress({ image: { image }, auth }, { signal: ctl.signal })) {
      if (!o.quiet) view.update(p);
      if (p.imageRef) ref = p.imageRef;
    }
    if (ctl.signal.aborted) throw new UsageError('pull interrupted');
    return ref;
  } catch (err) {
    if (!(err instanceof CriCallError) || err.code !== status.UNIMPLEMENTED) throw err;
    return (await s.cri.call('PullImage', { image: { image }, auth }, { signal: ctl.signal })).imageRef;
  } finally {
    process.off('SIGINT', onSigint);
  }
}

function authOf(o: PullOptions): DeepPartial<AuthConfig> | undefined {
  if (o.creds !== undefined) {
    const i = o.creds.indexOf(':');
    if (i <= 0) throw new UsageError('--creds takes USERNAME:PASSWORD');
    return { username: o.creds.slice(0, i), password: o.creds.slice(i + 1) };
  }
  if (o.auth !== undefined) return { auth: o.auth };
  return undefined;
}

export function pullCommand(io: CliIo): Command {
  return new Command('pull')
    .description('pull an image, with live per-layer progress on a terminal')
    .argument('<image>', 'reference, e.g. docker.io/library/busybox:latest or busybox')
    .option('--creds <user:password>', 'registry credentials')
    .option('--auth <base64>', 'base64 of user:password, as in a docker config')
    .option('-q, --quiet', 'no progress, only the image id')
    .action(async (image: string, opts: PullOptions, cmd: Command) => {
      const ref = await pullWithProgress(io, io.session(cmd), image, opts);
      io.out(opts.quiet ? `${ref}\n` : `Image is up to date for ${ref}\n`);
    });
}
