import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { ContainerEventType, ContainerState, PodSandboxState, type ContainerEventResponse } from '../../src/gen/runtime/v1/api.js';
import { ON_RUNSC } from '../helpers/handler.js';
import { create, createStart, ctrConfig, isCode, leftovers, runPod, setUpEnv, waitExited, waitState, type Env } from './containers-env.js';

let env: Env;
before(async () => {
  env = await setUpEnv({ StopSignal: 'SIGUSR2' });
});
after(async () => {
  await env?.cleanup();
});

const CRI_LINE = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+(?:Z|[+-]\d\d:\d\d)) (stdout|stderr) ([PF]) (.*)$/;

test('a container runs to its exit code; logs are CRI lines with P and F; status and events follow it; remove leaves nothing', async () => {
  const pod = await runPod(env);
  const events: ContainerEventResponse[] = [];
  const ac = new AbortController();
  const collecting = (async () => {
    try {
      for await (const ev of env.d.client.stream('GetContainerEvents', {}, { signal: ac.signal })) events.push(ev);
    } catch {
      // ended by the abort
    }
  })();
  // Wait until the stream is live: a probe container's CREATED event comes through.
  const probe = await create(env, pod, ctrConfig(env, ['true']));
  for (let i = 0; i < 400 && !events.some((e) => e.containerId === probe); i++) await new Promise((r) => setTimeout(r, 25));
  assert.ok(events.some((e) => e.containerId === probe), 'the event stream delivers');
  await env.d.client.call('RemoveContainer', { containerId: probe });

  const long = 'x'.repeat(20_000);
  const cfg = ctrConfig(env, ['sh', '-c', `echo hello; echo oops >&2; echo ${long}; printf partial; exit 3`], { labels: { role: 'test' } });
  const id = await create(env, pod, cfg);
  let s = (await env.d.client.call('ContainerStatus', { containerId: id })).status!;
  assert.equal(s.state, ContainerState.CONTAINER_CREATED);
  assert.equal(s.imageRef, env.image.configDigest);
  assert.equal(s.startedAt, 0n);
  await env.d.client.call('StartContainer', { containerId: id });
  s = await waitExited(env, id);
  assert.equal(s.exitCode, 3);
  assert.equal(s.reason, 'Error');
  assert.ok(s.startedAt > 0n && s.finishedAt >= s.startedAt && s.startedAt >= s.createdAt, `${s.createdAt} ${s.startedAt} ${s.finishedAt}`);
  assert.equal(s.labels['role'], 'test');
  const logPath = join(pod.config.logDirectory!, cfg.logPath!);
  assert.equal(s.logPath, logPath);

  const lines = readFileSync(logPath, 'utf8').split('\n').filter(Boolean);
  const parsed = lines.map((l) => {
    const m = CRI_LINE.exec(l);
    assert.ok(m, `not a CRI log line: ${l.slice(0, 100)}`);
    return { stream: m[2], tag: m[3], text: m[4]! };
  });
  assert.deepEqual(parsed.filter((p) => p.stream === 'stderr').map((p) => [p.tag, p.text]), [['F', 'oops']]);
  const out = parsed.filter((p) => p.stream === 'stdout');
  assert.deepEqual(out[0], { stream: 'stdout', tag: 'F', text: 'hello' });
  // The long line arrives in pieces: P for all but the last piece, which is F.
  const longPieces: typeof out = [];
  for (const p of out.slice(1)) {
    longPieces.push(p);
    if (p.tag === 'F') break;
  }
  assert.ok(longPieces.length >= 2, 'a 20000-byte line is split');
  assert.ok(longPieces.slice(0, -1).every((p) => p.tag === 'P'));
  assert.equal(longPieces.map((p) => p.text).join(''), long);
  assert.deepEqual(out.at(-1), { stream: 'stdout', tag: 'P', text: 'partial' });

  // A second container exiting 0 is Completed.
  const ok = await createStart(env, pod, ctrConfig(env, ['true']));
  s = await waitExited(env, ok);
  assert.equal(s.exitCode, 0);
  assert.equal(s.reason, 'Completed');

  const listed = (await env.d.client.call('ListContainers', { filter: { podSandboxId: pod.id, labelSelector: { role: 'test' } } })).containers;
  assert.deepEqual(listed.map((c) => c.id), [id]);
  const exited = (await env.d.client.call('ListContainers', { filter: { state: { state: ContainerState.CONTAINER_EXITED }, podSandboxId: pod.id } })).containers;
  assert.equal(exited.length, 2);

  await env.d.client.call('RemoveContainer', { containerId: id });
  await env.d.client.call('RemoveContainer', { containerId: id }); // idempotent
  await assert.rejects(env.d.client.call('ContainerStatus', { containerId: id }), isCode(status.NOT_FOUND));
  assert.deepEqual(await leftovers(env, id), []);
  assert.ok(existsSync(logPath), 'the log file stays for kubelet');
  for (let i = 0; i < 400 && !events.some((e) => e.containerId === id && e.containerEventType === ContainerEventType.CONTAINER_DELETED_EVENT); i++) {
    await new Promise((r) => setTimeout(r, 25));
  }
  const mine = events.filter((e) => e.containerId === id).map((e) => e.containerEventType);
  assert.deepEqual(mine, [
    ContainerEventType.CONTAINER_CREATED_EVENT,
    ContainerEventType.CONTAINER_STARTED_EVENT,
    ContainerEventType.CONTAINER_STOPPED_EVENT,
    ContainerEventType.CONTAINER_DELETED_EVENT,
  ]);
  // Each carries the pod's status and its containers as they were then (kubelet's
  // evented PLEG reads nothing else): this container with the state the event names,
  // and no longer listed once deleted.
  const want: Partial<Record<ContainerEventType, ContainerState>> = {
    [ContainerEventType.CONTAINER_CREATED_EVENT]: ContainerState.CONTAINER_CREATED,
    [ContainerEventType.CONTAINER_STOPPED_EVENT]: ContainerState.CONTAINER_EXITED,
  };
  for (const ev of events.filter((e) => e.containerId === id)) {
    const what = ContainerEventType[ev.containerEventType];
    assert.equal(ev.podSandboxStatus?.id, pod.id, `${what}: the pod's status`);
    assert.equal(ev.podSandboxStatus?.state, PodSandboxState.SANDBOX_READY, `${what}: the pod is ready`);
    assert.equal(ev.podSandboxStatus?.metadata?.name, pod.config.metadata?.name, `${what}: the pod's metadata`);
    assert.ok((ev.podSandboxStatus?.createdAt ?? 0n) > 0n, `${what}: the pod's creation time`);
    const mineNow = ev.containersStatuses.find((c) => c.id === id);
    if (ev.containerEventType === ContainerEventType.CONTAINER_DELETED_EVENT) assert.equal(mineNow, undefined, `${what}: no longer listed`);
    else if (ev.containerEventType === ContainerEventType.CONTAINER_STARTED_EVENT) {
      // It exits at once: by the time STARTED goes out it may already have.
      assert.ok([ContainerState.CONTAINER_RUNNING, ContainerState.CONTAINER_EXITED].includes(mineNow!.state), `${what}: the container's state`);
    } else {
      assert.equal(mineNow?.state, want[ev.containerEventType], `${what}: the container's state`);
      assert.equal(mineNow?.metadata?.name, cfg.metadata?.name, `${what}: the container's metadata`);
    }
  }
  // The pod's own events carry its containers too: STOPPED lists the one it stopped.
  const sleeper = await createStart(env, pod, ctrConfig(env, ['sleep', '1000']));
  await env.d.client.call('StopPodSandbox', { podSandboxId: pod.id });
  const podStopped = () => events.find((e) => e.containerId === pod.id && e.containerEventType === ContainerEventType.CONTAINER_STOPPED_EVENT);
  for (let i = 0; i < 400 && !podStopped(); i++) await new Promise((r) => setTimeout(r, 25));
  ac.abort();
  await collecting;
  assert.equal(podStopped()?.podSandboxStatus?.state, PodSandboxState.SANDBOX_NOTREADY);
  assert.equal(podStopped()?.containersStatuses.find((c) => c.id === sleeper)?.state, ContainerState.CONTAINER_EXITED, "the pod's STOPPED event lists its stopped container");
  await env.d.client.call('RemovePodSandbox', { podSandboxId: pod.id });
  assert.deepEqual(await leftovers(env), []);
});

test('StopContainer: the stop signal is honoured, SIGKILL follows the grace period, 0 kills at once, unknown ids succeed', async () => {
  const pod = await runPod(env);
  // The image's STOPSIGNAL (SIGUSR2) is used when the config names none.
  const graceful = await createStart(env, pod, ctrConfig(env, ['sh', '-c', "trap 'echo got USR2; exit 7' USR2; echo ready; while true; do sleep 0.1; done"]));
  await waitForLog(env, graceful, 'ready');
  await env.d.client.call('StopContainer', { containerId: graceful, timeout: 20n });
  let s = (await env.d.client.call('ContainerStatus', { containerId: graceful })).status!;
  assert.equal(s.state, ContainerState.CONTAINER_EXITED);
  assert.equal(s.exitCode, 7);
  assert.match(readFileSync(s.logPath, 'utf8'), /stdout F got USR2/);

  // stop_signal in the config wins over the image's.
  const byConfig = await createStart(
    env,
    pod,
    ctrConfig(env, ['sh', '-c', "trap 'exit 9' INT; echo ready; while true; do sleep 0.1; done"], { stopSignal: 10 /* SIGNAL_SIGINT */ }),
  );
  await waitForLog(env, byConfig, 'ready');
  await env.d.client.call('StopContainer', { containerId: byConfig, timeout: 20n });
  s = (await env.d.client.call('ContainerStatus', { containerId: byConfig })).status!;
  assert.equal(s.exitCode, 9);

  // On Linux PID 1 ignores signals it has no handler for: only SIGKILL ends it.
  // gVisor's kernel delivers the stop signal (SIGUSR2 here) to it with its default
  // action, so there the container ends by the stop signal: 128 + 12.
  const stubborn = await createStart(env, pod, ctrConfig(env, ['sleep', '1000']));
  await waitState(env, stubborn, ContainerState.CONTAINER_RUNNING);
  await env.d.client.call('StopContainer', { containerId: stubborn, timeout: 1n });
  s = (await env.d.client.call('ContainerStatus', { containerId: stubborn })).status!;
  assert.equal(s.exitCode, ON_RUNSC ? 140 : 137);
  assert.equal(s.reason, 'Error');

  const now = await createStart(env, pod, ctrConfig(env, ['sh', '-c', "trap 'exit 7' USR2 TERM; while true; do sleep 0.1; done"]));
  await waitState(env, now, ContainerState.CONTAINER_RUNNING);
  await env.d.client.call('StopContainer', { containerId: now, timeout: 0n });
  s = (await env.d.client.call('ContainerStatus', { containerId: now })).status!;
  assert.equal(s.exitCode, 137, 'timeout 0 sends SIGKILL without the stop signal');
  await env.d.client.call('StopContainer', { containerId: now, timeout: 0n }); // idempotent
  await env.d.client.call('StopContainer', { containerId: 'f'.repeat(64), timeout: 0n });
  await env.d.client.call('RemoveContainer', { containerId: 'f'.repeat(64) });
  await assert.rejects(env.d.client.call('ContainerStatus', { containerId: 'f'.repeat(64) }), isCode(status.NOT_FOUND));

  // Removing a running container kills it; stopping the pod stops the rest.
  const running = await createStart(env, pod, ctrConfig(env, ['sleep', '1000']));
  await waitState(env, running, ContainerState.CONTAINER_RUNNING);
  await env.d.client.call('RemoveContainer', { containerId: running });
  assert.deepEqual(await leftovers(env, running), []);
  const last = await createStart(env, pod, ctrConfig(env, ['sleep', '1000']));
  await waitState(env, last, ContainerState.CONTAINER_RUNNING);
  await env.d.client.call('StopPodSandbox', { podSandboxId: pod.id });
  s = (await env.d.client.call('ContainerStatus', { containerId: last })).status!;
  assert.equal(s.state, ContainerState.CONTAINER_EXITED);
  await assert.rejects(env.d.client.call('StartContainer', { containerId: last }), isCode(status.FAILED_PRECONDITION));
  await env.d.client.call('RemovePodSandbox', { podSandboxId: pod.id });
  assert.deepEqual(await leftovers(env), []);
});

export async function waitForLog(e: Env, id: string, text: string): Promise<void> {
  const s = (await e.d.client.call('ContainerStatus', { containerId: id })).status!;
  for (let i = 0; i < 400; i++) {
    if (existsSync(s.logPath) && readFileSync(s.logPath, 'utf8').includes(text)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`container ${id} never logged "${text}"`);
}
