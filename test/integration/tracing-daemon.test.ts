import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pushBusyboxImage } from '../helpers/oci-image.js';
import { imagesConfigToml, startRegistry } from '../helpers/registry.js';
import { tempDir } from '../helpers/daemon.js';
import { assertNothingLeft, podConfig, setUp } from './pods-env.js';

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  status?: { code?: number };
  attributes?: { key: string; value: Record<string, unknown> }[];
}

/** A small OTLP/HTTP (JSON) trace receiver on loopback: every span posted to /v1/traces. */
async function startReceiver() {
  const spans: OtlpSpan[] = [];
  let wake: (() => void) | undefined;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url === '/v1/traces' && req.method === 'POST') {
        assert.match(req.headers['content-type'] ?? '', /application\/json/);
        const body = JSON.parse(Buffer.concat(chunks).toString()) as {
          resourceSpans: { scopeSpans: { spans: OtlpSpan[] }[] }[];
        };
        for (const rs of body.resourceSpans) for (const ss of rs.scopeSpans) spans.push(...ss.spans);
        wake?.();
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`,
    spans,
    /** Resolves with the first span the predicate accepts, as spans arrive. */
    async waitFor(pred: (s: OtlpSpan) => boolean, what: string): Promise<OtlpSpan> {
      // The daemon sends a batch at least every second: 30 s without the span is a failure.
      const deadline = Date.now() + 30_000;
      for (;;) {
        const s = spans.find(pred);
        if (s) return s;
        if (Date.now() > deadline) throw new Error(`no span ${what}; got: ${spans.map((x) => x.name).join(', ')}`);
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 1000);
        });
      }
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

test('tracing: a span per RPC continuing the caller\'s W3C trace, with children for CNI, conmon, runc and the registry, sent over OTLP/HTTP', async (t) => {
  const rx = await startReceiver();
  t.after(() => rx.close());
  const reg = await startRegistry();
  t.after(() => reg.stop());
  const image = await pushBusyboxImage(reg.host, 'tracing/busybox', 'v1');
  const dir = tempDir('cricket-tracing-');
  const env = await setUp(t, dir, undefined, [], `${imagesConfigToml(dir, reg.host)}\n[tracing]\nendpoint = "${rx.url}"\n`);
  const c = env.d.client;

  // As kubelet sends it: traceparent in the gRPC metadata.
  const traceId = randomBytes(16).toString('hex');
  const parentId = randomBytes(8).toString('hex');
  const metadata = { traceparent: `00-${traceId}-${parentId}-01` };
  const config = podConfig(env, 'traced');
  const { podSandboxId } = await c.call('RunPodSandbox', { config }, { metadata });
  try {
    await traced(podSandboxId);
  } finally {
    // The pod (netns, veth, IP, container) goes before the daemon does.
    await c.call('StopPodSandbox', { podSandboxId }).catch(() => {});
    await c.call('RemovePodSandbox', { podSandboxId }).catch(() => {});
  }
  assertNothingLeft(env, podSandboxId, {});

  async function traced(podSandboxId: string): Promise<void> {
  await c.call('PullImage', { image: { image: image.ref } }, { metadata });
  const { containerId } = await c.call(
    'CreateContainer',
    { podSandboxId, sandboxConfig: config, config: { metadata: { name: 'c', attempt: 0 }, image: { image: image.ref }, command: ['sleep', '60'], logPath: 'c.log' } },
    { metadata },
  );
  await c.call('StartContainer', { containerId }, { metadata });
  await c.call('ContainerStatus', { containerId: 'f'.repeat(64) }).catch(() => {});

  const run = await rx.waitFor((s) => s.name === 'runtime.v1.RuntimeService/RunPodSandbox', 'runtime.v1.RuntimeService/RunPodSandbox');
  assert.equal(run.traceId, traceId);
  assert.equal(run.parentSpanId, parentId);
  assert.equal(run.kind, 2, 'SERVER');
  const cni = await rx.waitFor((s) => s.name === 'cni ADD' && s.parentSpanId === run.spanId, 'cni ADD');
  assert.equal(cni.traceId, traceId);

  const pull = await rx.waitFor((s) => s.name === 'runtime.v1.ImageService/PullImage', 'runtime.v1.ImageService/PullImage');
  assert.equal(pull.traceId, traceId);
  await rx.waitFor((s) => s.name === 'registry GET manifest' && s.parentSpanId === pull.spanId, 'registry GET manifest');
  await rx.waitFor((s) => s.name === 'registry GET blob' && s.parentSpanId === pull.spanId, 'registry GET blob');

  const create = await rx.waitFor((s) => s.name === 'runtime.v1.RuntimeService/CreateContainer', 'runtime.v1.RuntimeService/CreateContainer');
  await rx.waitFor((s) => s.name === 'conmon create' && s.parentSpanId === create.spanId, 'conmon create');
  const start = await rx.waitFor((s) => s.name === 'runtime.v1.RuntimeService/StartContainer', 'runtime.v1.RuntimeService/StartContainer');
  await rx.waitFor((s) => s.name === 'runc start' && s.parentSpanId === start.spanId, 'runc start');

  // A call without a trace context starts its own trace; a failed one is marked failed.
  const status = await rx.waitFor((s) => s.name === 'runtime.v1.RuntimeService/ContainerStatus', 'runtime.v1.RuntimeService/ContainerStatus');
  assert.notEqual(status.traceId, traceId);
  assert.equal(status.parentSpanId ?? '', '');
  assert.equal(status.status?.code, 2, 'ERROR');
  const code = status.attributes?.find((a) => a.key === 'rpc.grpc.status_code')?.value;
  assert.equal(Number(code?.['intValue']), 5, 'NOT_FOUND');
  }
});
