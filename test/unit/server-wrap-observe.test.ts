import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { Metadata } from '@grpc/grpc-js';
import { pino } from 'pino';
import { notFound } from '../../src/core/errors.js';
import { NO_METRICS, type Metrics } from '../../src/core/metrics.js';
import type { Handlers } from '../../src/core/rpc.js';
import { inSpan, type RpcSpan, type SpanHandle, type Tracing } from '../../src/core/tracing.js';
import { Readiness } from '../../src/server/readiness.js';
import { buildImplementations } from '../../src/server/wrap.js';

// What the wrapper reports for every call: the metrics port gets method, gRPC code and
// seconds; with tracing on, a span per call from the call's traceparent, ended with the code.

class FakeCall extends EventEmitter {
  cancelled = false;
  readonly metadata = new Metadata();
  constructor(readonly request: unknown) {
    super();
  }
  getDeadline() {
    return Infinity;
  }
}

function fakeSpan(name: string, log: string[]): RpcSpan {
  return {
    child: (n: string): SpanHandle => {
      log.push(`start ${n} under ${name}`);
      return { child: () => { throw new Error('deeper'); }, end: (err?: unknown) => log.push(`end ${n}${err ? ' failed' : ''}`) };
    },
    end: () => log.push(`end ${name}`),
    endRpc: (code: number) => log.push(`end ${name} code ${code}`),
  };
}

test('every answered call reaches the metrics port with its method and gRPC code; a span per call when tracing is on', async () => {
  const rpcs: [string, number, number][] = [];
  const metrics: Metrics = { ...NO_METRICS, rpc: (m, c, s) => void rpcs.push([m, c, s]) };
  const spans: string[] = [];
  const parents: (string | undefined)[] = [];
  const tracing: Tracing = {
    startRpc: (service, method, traceparent) => {
      parents.push(traceparent);
      spans.push(`start ${service}/${method}`);
      return fakeSpan(method, spans);
    },
    shutdown: async () => {},
  };
  const readiness = new Readiness();
  readiness.markServing();
  const handlers = {
    Version: async (ctx) => {
      const copy = { ...ctx };
      await inSpan(copy, 'child', {}, async () => {});
      return { version: '1' };
    },
    ContainerStatus: async () => {
      throw notFound('no such container');
    },
  } as Handlers;
  const impls = buildImplementations({ log: pino({ level: 'silent' }), readiness, shutdown: new AbortController().signal, metrics, tracing }, handlers);
  const invoke = (key: string, call: FakeCall) =>
    new Promise<unknown>((resolve) => (impls['RuntimeService']![key] as (c: unknown, cb: (e: unknown) => void) => void)(call, resolve));
  const traced = new FakeCall({});
  traced.metadata.set('traceparent', '00-0123456789abcdef0123456789abcdef-0123456789abcdef-01');
  assert.equal(await invoke('version', traced), null);
  assert.notEqual(await invoke('containerStatus', new FakeCall({ containerId: 'x' })), null);
  assert.deepEqual(rpcs.map(([m, c]) => [m, c]), [['Version', 0], ['ContainerStatus', 5]]);
  assert.ok(rpcs.every(([, , s]) => s >= 0 && s < 10));
  assert.deepEqual(parents, ['00-0123456789abcdef0123456789abcdef-0123456789abcdef-01', undefined]);
  assert.deepEqual(spans, [
    'start RuntimeService/Version',
    'start child under Version',
    'end child',
    'end Version code 0',
    'start RuntimeService/ContainerStatus',
    'end ContainerStatus code 5',
  ]);
});

test('inSpan without a span just runs the work; with one, a failure ends the child as failed and passes on', async () => {
  assert.equal(await inSpan({}, 'x', {}, async () => 3), 3);
  const log: string[] = [];
  const span = fakeSpan('p', log);
  await assert.rejects(inSpan({ span }, 'step', {}, async () => { throw new Error('boom'); }), /boom/);
  assert.deepEqual(log, ['start step under p', 'end step failed']);
});
