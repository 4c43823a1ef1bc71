import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { METHODS, type MethodName } from '../../src/gen/methods.js';
import { startDaemon } from '../helpers/daemon.js';
import { prng } from '../helpers/prng.js';

// Hostile bytes at every RPC: the daemon must answer each with a deliberate status —
// never INTERNAL (our bug) — and keep serving. PullImage only gets requests that fail
// before any network use: a fuzzed image name must never send traffic off this host.


function hostileMessages(rand: () => number): Buffer[] {
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(rand() * 256)));
  const field = (num: number, payload: Buffer) => Buffer.concat([Buffer.from([(num << 3) | 2, payload.length]), payload]);
  const out: Buffer[] = [
    Buffer.alloc(0),
    Buffer.from([0x0a]), // a length-delimited field with no length
    Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]), // claims a 4 GiB field
    Buffer.from([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), // over-long varint
    Buffer.from([0x07]), // wire type 7 does not exist
    field(1, Buffer.from([0xc3, 0x28, 0xff, 0xfe])), // invalid UTF-8 in field 1
    field(1, Buffer.from('../../../../etc/passwd')),
    field(1, Buffer.from('a'.repeat(100))),
    field(2, field(1, Buffer.from('/'))),
  ];
  for (let i = 0; i < 16; i++) out.push(bytes(1 + Math.floor(rand() * 64)));
  return out;
}

// UNKNOWN is allowed only where the CRI says typed failures travel that way (PullImage).
const ACCEPTABLE = new Set([
  status.OK,
  status.INVALID_ARGUMENT,
  status.NOT_FOUND,
  status.FAILED_PRECONDITION,
  status.ALREADY_EXISTS,
  status.UNIMPLEMENTED,
  status.RESOURCE_EXHAUSTED,
  status.OUT_OF_RANGE,
  status.CANCELLED,
]);

test('random and malformed bytes at every RPC get deliberate errors; the daemon keeps serving', async (t) => {
  const d = await startDaemon({ args: ['--cni-conf-dir', '/nonexistent-cricket-fuzz'] });
  t.after(() => d.cleanup());
  const raw = new Client(`unix://${d.socket}`, credentials.createInsecure());
  t.after(() => raw.close());
  const rand = prng(20261125);
  const ident = (b: Buffer) => b;
  const seen: string[] = [];

  const unary = (path: string, body: Buffer) =>
    new Promise<number>((resolve) => {
      raw.makeUnaryRequest(path, ident, ident, body, new Metadata(), { deadline: Date.now() + 10_000 }, (err) =>
        resolve(err ? (err as ServiceError).code : status.OK),
      );
    });
  // Only the event stream stays open by design; every other stream must end with a
  // status, so one left hanging is reported as DEADLINE_EXCEEDED (a failure here).
  const streaming = (path: string, body: Buffer) =>
    new Promise<number>((resolve) => {
      const call = raw.makeServerStreamRequest(path, ident, ident, body, new Metadata(), { deadline: Date.now() + 10_000 });
      const openForever = path.endsWith('/GetContainerEvents');
      const timer = setTimeout(() => {
        call.cancel();
        resolve(openForever ? status.OK : status.DEADLINE_EXCEEDED);
      }, openForever ? 300 : 5000);
      call.on('data', () => {});
      call.on('error', (err: ServiceError) => {
        clearTimeout(timer);
        resolve(err.code === status.CANCELLED ? status.OK : err.code);
      });
      call.on('end', () => {
        clearTimeout(timer);
        resolve(status.OK);
      });
    });

  for (const name of Object.keys(METHODS) as MethodName[]) {
    const m = METHODS[name];
    const bodies =
      name === 'PullImage'
        ? [Buffer.from([0x0a]), Buffer.from([0x0a, 0x02, 0x0a, 0x00]), Buffer.from([0x0a, 0x05, 0x0a, 0x03, 0x41, 0x42, 0x21])]
        : hostileMessages(rand);
    for (const body of bodies) {
      const code = m.responseStream ? await streaming(m.path, body) : await unary(m.path, body);
      if (!ACCEPTABLE.has(code)) seen.push(`${name} <${body.toString('hex')}> → ${status[code]}`);
    }
  }
  assert.deepEqual(seen, [], 'no RPC answers INTERNAL/UNKNOWN to malformed input');

  // A message above the configured maximum is refused by size, not processed.
  const huge = Buffer.concat([Buffer.from([0x0a, 0x80, 0x80, 0x80, 0x09]), Buffer.alloc(18 << 20, 0x61)]);
  assert.equal(await unary(METHODS.ImageStatus.path, huge), status.RESOURCE_EXHAUSTED);

  assert.equal((await d.client.call('Version', {})).runtimeName, 'cricket');

  // Anything a lucky fuzz input managed to create is removed again.
  const pods = await d.client.call('ListPodSandbox', {}).catch(() => ({ items: [] }));
  for (const p of pods.items) await d.client.call('RemovePodSandbox', { podSandboxId: p.id });
  const ctrs = await d.client.call('ListContainers', {}).catch(() => ({ containers: [] }));
  for (const c of ctrs.containers) await d.client.call('RemoveContainer', { containerId: c.id });
});
