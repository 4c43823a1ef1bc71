import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { OpContext } from '../../src/core/context.js';
import type { Handlers } from '../../src/core/rpc.js';
import { NO_METRICS } from '../../src/core/metrics.js';
import { Readiness } from '../../src/server/readiness.js';
import { buildImplementations } from '../../src/server/wrap.js';

// The wrapper over a fake grpc-js call: what a handler's OpContext does when its logger
// and signal are made on first use.

class FakeCall extends EventEmitter {
  cancelled = false;
  constructor(
    readonly request: unknown,
    readonly deadline: number = Infinity,
  ) {
    super();
  }
  getDeadline() {
    return this.deadline;
  }
}

function setup(handlers: Handlers, level = 'info') {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  const log = pino({ level }, sink);
  const readiness = new Readiness();
  readiness.markServing();
  const shutdown = new AbortController();
  const impls = buildImplementations({ log, readiness, shutdown: shutdown.signal, metrics: NO_METRICS }, handlers);
  const invoke = (service: string, key: string, call: FakeCall) =>
    new Promise<{ err: unknown; res: unknown }>((resolve) => {
      (impls[service]![key] as (c: unknown, cb: (err: unknown, res: unknown) => void) => void)(call, (err, res) => resolve({ err, res }));
    });
  return { lines, invoke, shutdown };
}

test('a context is spreadable, its ids distinct, and a signal used after the answer is not aborted by grpc-js\'s cancelled event', async () => {
  const seen: OpContext[] = [];
  const { invoke } = setup({
    Version: async (ctx) => {
      seen.push(ctx, { ...ctx });
      void ctx.signal;
      return { version: '0.1.0' };
    },
  } as Handlers);
  const call = new FakeCall({});
  const { err, res } = await invoke('RuntimeService', 'version', call);
  assert.equal(err, null);
  assert.equal((res as { version: string }).version, '0.1.0');
  const [ctx, copy] = seen as [OpContext, OpContext];
  assert.match(ctx.requestId, /^[0-9a-f]{12}$/);
  assert.equal(copy.requestId, ctx.requestId);
  assert.equal(typeof copy.log.info, 'function');
  assert.ok(copy.signal instanceof AbortSignal);
  call.emit('cancelled', 'cancelled'); // grpc-js does this after every status
  assert.equal(ctx.signal.aborted, false);
  await invoke('RuntimeService', 'version', new FakeCall({}));
  assert.notEqual(seen[2]!.requestId, ctx.requestId);
});

test('the signal carries the deadline, a client cancel and one that came before first use', async () => {
  const reasons: unknown[] = [];
  const { invoke } = setup({
    Status: async (ctx) => {
      await new Promise((r) => setTimeout(r, 5));
      const signal = ctx.signal;
      await new Promise((r) => (signal.aborted ? r(undefined) : signal.addEventListener('abort', r, { once: true })));
      reasons.push(signal.reason);
      return {};
    },
  } as Handlers);
  await invoke('RuntimeService', 'status', new FakeCall({}, Date.now() + 20));
  assert.equal((reasons[0] as DOMException).name, 'TimeoutError');
  const early = new FakeCall({});
  const p = invoke('RuntimeService', 'status', early);
  early.cancelled = true;
  early.emit('cancelled', 'cancelled');
  await p;
  assert.equal((reasons[1] as DOMException).name, 'AbortError');
  const late = new FakeCall({});
  const q = invoke('RuntimeService', 'status', late);
  setTimeout(() => late.emit('cancelled', 'cancelled'), 15);
  await q;
  assert.equal((reasons[2] as DOMException).name, 'AbortError');
});

test('mutating RPCs log one line in and out at info; status and list calls only at debug', async () => {
  const handlers = { Version: async () => ({}), RemoveImage: async () => ({}) } as unknown as Handlers;
  const info = setup(handlers, 'info');
  await info.invoke('RuntimeService', 'version', new FakeCall({}));
  assert.equal(info.lines.length, 0);
  await info.invoke('ImageService', 'removeImage', new FakeCall({ image: { image: 'busybox' } }));
  assert.deepEqual(info.lines.map((l) => l['msg']), ['rpc start', 'rpc done']);
  assert.equal(info.lines[0]!['rpc'], 'RemoveImage');
  assert.deepEqual(info.lines[0]!['ids'], { image: 'busybox' });
  assert.equal(info.lines[0]!['req'], info.lines[1]!['req']);
  const debug = setup(handlers, 'debug');
  await debug.invoke('RuntimeService', 'version', new FakeCall({}));
  assert.deepEqual(debug.lines.map((l) => l['msg']), ['rpc start', 'rpc done']);
});
