import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CriLogParser, parseSince } from '../../src/cli/logs/cri-log.js';
import { parseEnv, parsePublish, parseVolume } from '../../src/cli/commands/run.js';
import { resolvePodIn } from '../../src/cli/resolve.js';
import { exitCodeOf } from '../../src/cli/remote/ws-remote-command.js';
import { UsageError } from '../../src/cli/exit-codes.js';
import { PodSandbox } from '../../src/gen/runtime/v1/api.js';
import { ByteCounts, PullTracker } from '../../src/services/images/pull-tracker.js';

test('CriLogParser joins P pieces per stream and passes unparsable lines through', () => {
  const p = new CriLogParser();
  assert.equal(p.push('2026-01-01T00:00:00.1Z stdout P hel'), undefined);
  assert.deepEqual(p.push('2026-01-01T00:00:00.2Z stderr F boom'), { time: '2026-01-01T00:00:00.2Z', ms: Date.parse('2026-01-01T00:00:00.2Z'), stream: 'stderr', text: 'boom' });
  assert.equal(p.push('2026-01-01T00:00:00.3Z stdout F lo')!.text, 'hello');
  assert.equal(p.push('2026-01-01T00:00:00.4Z stdout F')!.text, '');
  assert.deepEqual(p.push('garbage'), { time: '', ms: 0, stream: 'stdout', text: 'garbage' });
});

test('parseSince: durations back from now and RFC 3339 times; anything else is usage', () => {
  const now = 10_000_000;
  assert.equal(parseSince('10s', now), now - 10_000);
  assert.equal(parseSince('1h30m', now), now - 5_400_000);
  assert.equal(parseSince('2026-01-01T00:00:00Z', now), Date.parse('2026-01-01T00:00:00Z'));
  assert.throws(() => parseSince('10 minutes'), UsageError);
  assert.throws(() => parseSince('soon'), UsageError);
});

test('run flags: -p, -e, -v', () => {
  assert.deepEqual(parsePublish('8080:80'), [{ hostIp: '', hostPort: 8080, containerPort: 80, protocol: 0 }]);
  assert.deepEqual(parsePublish('127.0.0.1:53:53/udp'), [{ hostIp: '127.0.0.1', hostPort: 53, containerPort: 53, protocol: 1 }]);
  for (const bad of ['80', '0:80', '70000:80', 'a:b', '1:2/icmp']) assert.throws(() => parsePublish(bad), UsageError, bad);
  assert.deepEqual(parseEnv('A=b=c', {}), { key: 'A', value: Buffer.from('b=c') });
  assert.deepEqual(parseEnv('HOME', { HOME: '/root' }), { key: 'HOME', value: Buffer.from('/root') });
  assert.throws(() => parseEnv('=x', {}), UsageError);
  assert.deepEqual(parseVolume('/data:/mnt:ro'), { hostPath: '/data', containerPath: '/mnt', readonly: true });
  assert.equal(parseVolume('rel:/mnt').hostPath, `${process.cwd()}/rel`);
  for (const bad of ['/data', '/a:rel', '/a:/b:rx', ':/b']) assert.throws(() => parseVolume(bad), UsageError, bad);
});

test('names and id prefixes: exact id, then name, then a unique prefix; ambiguity is usage', () => {
  const pod = (id: string, name: string, ns = 'default', createdAt = 1n) => PodSandbox.fromPartial({ id, createdAt, metadata: { name, namespace: ns } });
  const a = pod(`abc${'0'.repeat(61)}`, 'web');
  const b = pod(`abd${'0'.repeat(61)}`, 'db');
  const c = pod(`fff${'0'.repeat(61)}`, 'web', 'other');
  assert.equal(resolvePodIn([a, b], 'web'), a);
  assert.equal(resolvePodIn([a, b], 'abd'), b);
  assert.equal(resolvePodIn([a, b], a.id), a);
  assert.equal(resolvePodIn([a, b, c], 'other/web'), c);
  assert.throws(() => resolvePodIn([a, b], 'ab'), /matches 2 pods/);
  assert.throws(() => resolvePodIn([a, b, c], 'web'), /names 2 pods/);
  assert.throws(() => resolvePodIn([a, b], 'nope'), UsageError);
  // Two attempts of one pod: the newest.
  const newer = pod(`abe${'0'.repeat(61)}`, 'web', 'default', 5n);
  assert.equal(resolvePodIn([a, newer], 'web'), newer);
});

test('exitCodeOf: the remotecommand status', () => {
  assert.equal(exitCodeOf(''), 0);
  assert.equal(exitCodeOf('{"status":"Success"}'), 0);
  assert.equal(exitCodeOf(JSON.stringify({ status: 'Failure', reason: 'NonZeroExitCode', details: { causes: [{ reason: 'ExitCode', message: '7' }] } })), 7);
  assert.throws(() => exitCodeOf(JSON.stringify({ status: 'Failure', message: 'no such binary' })), /no such binary/);
});

test('PullTracker: states per layer, bytes from the shared counter while downloading', () => {
  const bytes = new ByteCounts();
  const t = new PullTracker(bytes);
  assert.equal(t.snapshot().phase, 'resolving');
  t.setLayers([
    { digest: 'sha256:a', size: 100 },
    { digest: 'sha256:b', size: 50 },
  ]);
  const c = bytes.open('sha256:a');
  t.mark('sha256:a', 'downloading');
  t.mark('sha256:b', 'exists');
  c.n = 40;
  let s = t.snapshot();
  assert.deepEqual(
    s.layers.map((l) => [l.state, l.done]),
    [
      ['downloading', 40],
      ['exists', 50],
    ],
  );
  assert.equal(s.doneBytes, 90);
  assert.equal(s.totalBytes, 150);
  // A second tracker of another image sharing the download sees the same bytes.
  const t2 = new PullTracker(bytes);
  t2.setLayers([{ digest: 'sha256:a', size: 100 }]);
  t2.mark('sha256:a', 'downloading');
  assert.equal(t2.snapshot().doneBytes, 40);
  bytes.close('sha256:a', c);
  t.mark('sha256:a', 'unpacking');
  t.finish();
  s = t.snapshot();
  assert.equal(s.phase, 'done');
  assert.equal(s.doneBytes, 150);
});
