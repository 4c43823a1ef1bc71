import { PassThrough } from 'node:stream';
import pino from 'pino';
import { runExec } from '../../src/runtime/exec-runner.js';
import type { RemoteCommandIO } from '../../src/core/remote-io.js';

// Stands in for a daemon serving one `exec -t` session, so a test can SIGKILL it
// mid-session: node exec-tty-child.js <runtime> <runtime root> <bundle dir> <container id> <cmd...>.
const [runtimePath, runtimeRoot, bundleDir, id, ...cmd] = process.argv.slice(2);
const stdout = new PassThrough();
stdout.resume();
const io: RemoteCommandIO = {
  tty: true,
  stdin: new PassThrough(),
  stdout,
  stderr: undefined,
  signal: new AbortController().signal,
  onResize: (cb) => cb({ width: 80, height: 24 }),
  finish: async () => {},
};
await runExec(pino({ level: 'silent' }), { id: id!, runtimePath: runtimePath!, runtimeRoot: runtimeRoot!, runtimeArgs: [], runtimeType: 'oci', bundleDir: bundleDir! }, cmd, io);
