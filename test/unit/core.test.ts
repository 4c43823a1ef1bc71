import { test } from 'node:test';
import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { pino } from 'pino';
import { CricketError, ERROR_CODES, ProcessError, wrap } from '../../src/core/errors.js';
import { mustResolve, newId, resolvePrefix } from '../../src/core/ids.js';
import { KeyedMutex } from '../../src/core/keyed-mutex.js';
import { Rollback, withRollback } from '../../src/core/rollback.js';
import { SingleFlight } from '../../src/core/single-flight.js';
import { grpcCodeOf, toServiceError } from '../../src/server/status-map.js';
import { run } from '../../src/host/exec.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const silent = pino({ level: 'silent' });

test('every error code maps to a distinct gRPC status', () => {
  const codes = ERROR_CODES.map(grpcCodeOf);
  assert.equal(new Set(codes).size, codes.length);
  assert.equal(grpcCodeOf('NotFound'), status.NOT_FOUND);
  assert.equal(grpcCodeOf('Unknown'), status.UNKNOWN);
});

test('foreign errors become INTERNAL; wrap keeps the code and prefixes the action', () => {
  assert.equal(toServiceError(new Error('boom')).code, status.INTERNAL);
  const inner = new CricketError('NotFound', 'container "abc" not found');
  const outer = wrap(inner, 'stopping container');
  assert.equal(outer.code, 'NotFound');
  assert.equal(outer.message, 'stopping container: container "abc" not found');
  assert.equal(outer.cause, inner);
  const enoent = Object.assign(new Error('no such file'), { code: 'ENOENT' });
  assert.equal(wrap(enoent, 'reading').code, 'NotFound');
  assert.equal(toServiceError(new CricketError('InvalidArgument', 'a\nb')).details, 'a b');
});

test('ids are 64 lowercase hex and prefixes resolve unless ambiguous', () => {
  const a = newId();
  assert.match(a, /^[0-9a-f]{64}$/);
  const ids = ['abc1' + '0'.repeat(60), 'abc2' + '0'.repeat(60)];
  assert.equal(resolvePrefix('abc1', ids, 'container'), ids[0]);
  assert.throws(() => resolvePrefix('abc', ids, 'container'), /ambiguous/);
  assert.equal(resolvePrefix('ffff', ids, 'container'), undefined);
  assert.equal(resolvePrefix('not/hex', ids, 'container'), undefined);
  assert.throws(() => mustResolve('ffff', ids, 'container'), (e: CricketError) => e.code === 'NotFound');
  assert.throws(() => resolvePrefix('', ids, 'container'), (e: CricketError) => e.code === 'InvalidArgument');
});

test('keyed mutex serialises one key and lets others run', async () => {
  const m = new KeyedMutex();
  const order: string[] = [];
  const slow = m.run('a', async () => {
    order.push('a1 start');
    await new Promise((r) => setTimeout(r, 30));
    order.push('a1 end');
  });
  const second = m.run('a', async () => void order.push('a2'));
  const other = m.run('b', async () => void order.push('b'));
  await Promise.all([slow, second, other]);
  assert.deepEqual(order, ['a1 start', 'b', 'a1 end', 'a2']);
  assert.equal(m.size, 0);
});

test('rollback unwinds newest first, survives a failing step, and commit forgets', async () => {
  const done: string[] = [];
  await assert.rejects(
    withRollback(silent, async (rb) => {
      rb.push('one', () => void done.push('one'));
      rb.push('two', () => {
        throw new Error('stuck');
      });
      rb.push('three', () => void done.push('three'));
      throw new Error('step four failed');
    }),
    /step four failed/,
  );
  assert.deepEqual(done, ['three', 'one']);
  const rb = new Rollback();
  rb.push('x', () => void done.push('x'));
  rb.commit();
  await rb.unwind(silent);
  assert.deepEqual(done, ['three', 'one']);
});

test('single flight shares one promise per key and forgets it after', async () => {
  const sf = new SingleFlight<number>();
  let calls = 0;
  const work = () => new Promise<number>((r) => setTimeout(() => r(++calls), 10));
  const [a, b] = await Promise.all([sf.run('k', work), sf.run('k', work)]);
  assert.equal(a, 1);
  assert.equal(b, 1);
  assert.equal(await sf.run('k', work), 2);
});

test('run() reports exit code and stderr tail, honours timeout and abort', async () => {
  const ok = await run('/bin/sh', ['-c', 'echo hi; echo err >&2']);
  assert.equal(ok.stdout, 'hi\n');
  assert.equal(ok.stderr, 'err\n');
  await assert.rejects(run('/bin/sh', ['-c', 'echo bad thing >&2; exit 3']), (e: ProcessError) => {
    return e.exitCode === 3 && /bad thing/.test(e.message);
  });
  await assert.rejects(run('/bin/sleep', ['5'], { timeoutMs: 50 }), (e: CricketError) => e.code === 'DeadlineExceeded');
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 20);
  await assert.rejects(run('/bin/sleep', ['5'], { signal: ac.signal }), (e: CricketError) => e.code === 'Canceled');
  await assert.rejects(run('/nonexistent/x', []), (e: CricketError) => e.code === 'FailedPrecondition');
  const big = await run('/bin/sh', ['-c', 'head -c 100000 /dev/zero'], { maxOutputBytes: 1000 });
  assert.equal(big.stdoutBytes.length, 1000);
  assert.ok(big.truncated);
});

test('run() passes input, env and cwd, reports a signal by name, and runs programs side by side', async () => {
  assert.equal((await run('/bin/cat', [], { input: 'from stdin' })).stdout, 'from stdin');
  assert.equal((await run('/bin/cat', [], { input: new Uint8Array([0, 255, 10]) })).stdoutBytes.toString('hex'), '00ff0a');
  const envd = await run('/bin/sh', ['-c', 'echo "$ONLY:$PATH"; pwd'], { env: { ONLY: 'this', PATH: '/usr/bin:/bin' }, cwd: '/tmp' });
  assert.equal(envd.stdout, 'this:/usr/bin:/bin\n/tmp\n');
  const killed = await run('/bin/sh', ['-c', 'kill -TERM $$'], { allowFailure: true });
  assert.equal(killed.signal, 'SIGTERM');
  assert.equal(killed.exitCode, null);
  // A reader that waits for a writer started after it: served one after the other, the
  // reader would wait until its timeout kills it.
  const dir = mkdtempSync(join(tmpdir(), 'cricket-run-'));
  try {
    const fifo = join(dir, 'f');
    await run('/usr/bin/mkfifo', [fifo]);
    const reader = run('/bin/cat', [fifo], { timeoutMs: 30_000 });
    const writer = run('/bin/sh', ['-c', `echo side-by-side > ${fifo}`], { timeoutMs: 30_000 });
    assert.equal((await reader).stdout, 'side-by-side\n');
    await writer;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
