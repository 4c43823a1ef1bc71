import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseManifests } from '../../src/services/play/manifest.js';
import { parseQuantity } from '../../src/services/play/quantity.js';
import { linuxOf } from '../../src/services/play/pod-runner.js';
import { restartDelayMs } from '../../src/services/play/backoff.js';
import { CricketError } from '../../src/core/errors.js';

const pod = `apiVersion: v1
kind: Pod
metadata:
  name: demo
  namespace: ns1
  labels: { app: demo }
spec:
  hostNetwork: true
  restartPolicy: Never
  runtimeClassName: runsc
  volumes:
    - name: v
      emptyDir: { medium: Memory }
    - name: h
      hostPath: { path: /srv }
  initContainers:
    - name: init
      image: busybox:1.36
      command: [sh]
  containers:
    - name: c
      image: busybox
      args: [a, b]
      env:
        - { name: A, value: x }
        - name: B
          valueFrom: { fieldRef: { fieldPath: status.podIP } }
      ports: [{ containerPort: 80, hostPort: 8080 }]
      volumeMounts: [{ name: v, mountPath: /v }, { name: h, mountPath: /h, readOnly: true }]
      securityContext: { privileged: true }
      lifecycle: { postStart: { exec: { command: [x] } }, preStop: { sleep: { seconds: 2 } } }
      stdin: true
`;

test('a Pod: every supported field read, unsupported ones warned about with their line', () => {
  const { pods, warnings } = parseManifests(pod, 'p.yaml');
  assert.equal(pods.length, 1);
  const p = pods[0]!;
  assert.equal(p.name, 'demo');
  assert.equal(p.namespace, 'ns1');
  assert.equal(p.hostNetwork, true);
  assert.equal(p.restartPolicy, 'Never');
  assert.equal(p.runtimeClassName, 'runsc');
  assert.equal(p.initContainers[0]!.imagePullPolicy, 'IfNotPresent');
  const c = p.containers[0]!;
  assert.equal(c.imagePullPolicy, 'Always', 'latest (no tag) pulls always, as kubelet defaults it');
  assert.deepEqual(c.env, [{ name: 'A', value: 'x' }, { name: 'B', fieldPath: 'status.podIP' }]);
  assert.deepEqual(c.ports, [{ containerPort: 80, hostPort: 8080, protocol: 'TCP' }]);
  assert.deepEqual(c.volumeMounts[1], { name: 'h', mountPath: '/h', readOnly: true });
  assert.deepEqual(p.volumes, [{ name: 'v', emptyDir: { medium: 'Memory' } }, { name: 'h', hostPath: { path: '/srv' } }]);
  assert.equal(c.securityContext.privileged, true);
  assert.deepEqual(c.lifecycle, { postStart: { exec: { command: ['x'] } }, preStop: { sleepSeconds: 2 } });
  assert.ok(warnings.some((w) => /^p\.yaml:32: spec\.containers\[0\]\.stdin is not supported/.test(w)), warnings.join('\n'));
  assert.ok(!warnings.some((w) => /emptyDir/.test(w)), warnings.join('\n'));
});

test('a Deployment: its pod template, one replica (more is a warning); other kinds are skipped with a warning', () => {
  const text = `kind: Deployment
metadata: { name: web }
spec:
  replicas: 3
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec:
      containers: [{ name: c, image: busybox }]
---
kind: Service
metadata: { name: svc }
`;
  const { pods, warnings } = parseManifests(text, 'd.yaml');
  assert.deepEqual(pods.map((p) => [p.name, p.labels]), [['web', { app: 'web' }]]);
  assert.ok(warnings.some((w) => /d\.yaml:4: spec\.replicas: cricket play runs one replica/.test(w)));
  assert.ok(warnings.some((w) => /kind Service .* skipped/.test(w)));
  const job = parseManifests('kind: Job\nmetadata: {name: j}\nspec:\n  template:\n    spec:\n      containers: [{name: c, image: b}]\n', 'j.yaml');
  assert.equal(job.pods[0]!.restartPolicy, 'OnFailure');
});

test('invalid manifests: InvalidArgument naming the file, line and field', () => {
  const bad = (text: string, re: RegExp) => {
    assert.throws(
      () => parseManifests(text, 'b.yaml'),
      (e: unknown) => e instanceof CricketError && e.code === 'InvalidArgument' && re.test(e.message),
      re.source,
    );
  };
  bad('kind: Pod\nmetadata: {name: x}\nspec:\n  containers: []\n', /b\.yaml:4: spec\.containers: needs at least one container/);
  bad('kind: Pod\nmetadata: {name: x}\nspec:\n  containers:\n    - name: c\n', /b\.yaml:5: spec\.containers\[0\]\.image: is required/);
  bad('kind: Pod\nmetadata: {name: Bad_Name}\nspec:\n  containers: [{name: c, image: i}]\n', /metadata\.name: "Bad_Name" is not a DNS label/);
  bad('kind: Pod\nmetadata: {name: x}\nspec:\n  containers:\n  - name: c\n    image: i\n    ports: [{containerPort: 99999}]\n', /b\.yaml:7: .*containerPort: must be an integer from 1 to 65535/);
  bad('kind: Pod\nmetadata: {name: x}\nspec:\n  containers:\n  - name: c\n    image: i\n    volumeMounts: [{name: nope, mountPath: /x}]\n', /mounts volume "nope"/);
  bad('kind: Pod\nmetadata: {name: x}\nspec:\n  containers:\n  - name: c\n    image: i\n    env: [{name: A, valueFrom: {fieldRef: {fieldPath: spec.other}}}]\n', /fieldPath: must be one of metadata\.name/);
  bad('kind: Pod\nmetadata: {name: x\n', /b\.yaml:\d+: /);
  bad('kind: Pod\nmetadata: {name: x}\nspec:\n  containers: [{name: c, image: i}, {name: c, image: j}]\n', /two containers are named "c"/);
});

test('probes: one action, kubelet defaults, thresholds checked', () => {
  const text = `kind: Pod
metadata: {name: x}
spec:
  containers:
  - name: c
    image: i
    livenessProbe: { httpGet: { port: 8080 }, failureThreshold: 5 }
    readinessProbe: { exec: { command: [cat, /ok] }, periodSeconds: 2, successThreshold: 2 }
    startupProbe: { tcpSocket: { port: 80 } }
`;
  const c = parseManifests(text, 'p.yaml').pods[0]!.containers[0]!;
  assert.deepEqual(c.livenessProbe, { initialDelaySeconds: 0, periodSeconds: 10, timeoutSeconds: 1, successThreshold: 1, failureThreshold: 5, httpGet: { path: '/', port: 8080, host: '', scheme: 'HTTP' } });
  assert.deepEqual(c.readinessProbe?.exec, { command: ['cat', '/ok'] });
  assert.equal(c.readinessProbe?.successThreshold, 2);
  assert.deepEqual(c.startupProbe?.tcpSocket, { port: 80, host: '' });
  const bad = (probe: string, re: RegExp) =>
    assert.throws(() => parseManifests(`kind: Pod\nmetadata: {name: x}\nspec:\n  containers:\n  - name: c\n    image: i\n    ${probe}\n`, 'p.yaml'), re);
  bad('livenessProbe: { periodSeconds: 1 }', /p\.yaml:7: .*livenessProbe: needs exactly one of exec, httpGet, tcpSocket/);
  bad('livenessProbe: { exec: { command: [x] }, successThreshold: 2 }', /must be 1 for liveness and startup probes/);
  bad('readinessProbe: { httpGet: { port: http } }', /named ports are not supported/);
  bad('readinessProbe: { tcpSocket: {} }', /tcpSocket\.port: is required/);
});

test('quantities and their CRI form, as kubelet converts them', () => {
  assert.equal(parseQuantity('500m', 'cpu'), 500);
  assert.equal(parseQuantity('1.5', 'cpu'), 1500);
  assert.equal(parseQuantity('64Mi', 'memory'), 64 * 2 ** 20);
  assert.equal(parseQuantity('1G', 'memory'), 1e9);
  assert.equal(parseQuantity('2Gb', 'memory'), undefined);
  assert.equal(parseQuantity('1Ki', 'cpu'), undefined);
  const text = `kind: Pod
metadata: {name: x}
spec:
  securityContext: { runAsUser: 1000, seccompProfile: { type: Localhost, localhostProfile: prof.json } }
  containers:
  - name: c
    image: i
    resources: { requests: { cpu: 100m }, limits: { cpu: 250m, memory: 64Mi } }
    securityContext: { runAsUser: 7, allowPrivilegeEscalation: false, capabilities: { add: [NET_ADMIN], drop: [ALL] } }
  - name: d
    image: i
`;
  const pod = parseManifests(text, 'r.yaml').pods[0]!;
  const l = linuxOf(pod.containers[0]!, pod);
  assert.deepEqual(l.resources, { cpuShares: 102n, cpuPeriod: 100000n, cpuQuota: 25000n, memoryLimitInBytes: 67108864n });
  assert.deepEqual(l.securityContext?.runAsUser, { value: 7n });
  assert.equal(l.securityContext?.noNewPrivs, true);
  assert.deepEqual(l.securityContext?.capabilities, { addCapabilities: ['NET_ADMIN'], dropCapabilities: ['ALL'] });
  assert.deepEqual(l.securityContext?.seccomp, { profileType: 2, localhostRef: '/var/lib/kubelet/seccomp/prof.json' });
  const d = linuxOf(pod.containers[1]!, pod);
  assert.deepEqual(d.securityContext?.runAsUser, { value: 1000n }, "the pod's runAsUser is the default");
  assert.deepEqual(d.resources, { cpuShares: 0n, cpuPeriod: 0n, cpuQuota: 0n, memoryLimitInBytes: 0n });
  assert.throws(() => parseManifests(text.replace('250m', '1 core'), 'r.yaml'), /r\.yaml:8: spec\.containers\[0\]\.resources\.limits\.cpu: "1 core" is not a CPU quantity/);
});

test('configMap and secret volumes and key refs come from the same file', () => {
  const text = `kind: Pod
metadata: {name: x, namespace: ns}
spec:
  volumes:
    - { name: c, configMap: { name: cm } }
    - { name: s, secret: { secretName: sec, items: [{ key: b, path: dir/b.txt }] } }
    - { name: o, configMap: { name: absent, optional: true } }
  containers:
  - name: c
    image: i
    env: [{ name: A, valueFrom: { configMapKeyRef: { name: cm, key: a } } }, { name: B, valueFrom: { secretKeyRef: { name: sec, key: b } } }]
    envFrom: [{ configMapRef: { name: cm }, prefix: CM_ }, { secretRef: { name: sec } }]
---
kind: ConfigMap
metadata: {name: cm, namespace: ns}
data: { a: alpha }
binaryData: { bin: AAE= }
---
kind: Secret
metadata: {name: sec, namespace: ns}
data: { b: YmV0YQ== }
`;
  const { pods, warnings } = parseManifests(text, 'c.yaml');
  assert.deepEqual(warnings, []);
  const p = pods[0]!;
  assert.deepEqual(p.containers[0]!.env, [
    { name: 'CM_a', value: 'alpha' },
    { name: 'CM_bin', value: '\u0000\u0001' },
    { name: 'b', value: 'beta' },
    { name: 'A', value: 'alpha' },
    { name: 'B', value: 'beta' },
  ]);
  assert.deepEqual(p.volumes[0]!.files, [{ path: 'a', dataB64: Buffer.from('alpha').toString('base64') }, { path: 'bin', dataB64: 'AAE=' }]);
  assert.deepEqual(p.volumes[1]!.files, [{ path: 'dir/b.txt', dataB64: 'YmV0YQ==' }]);
  assert.deepEqual(p.volumes[2]!.files, []);
  assert.throws(() => parseManifests(text.replace('namespace: ns}\ndata: { a', 'namespace: other}\ndata: { a'), 'c.yaml'), /ConfigMap cm is not in c\.yaml/);
  assert.throws(() => parseManifests(text.replace('path: dir/b.txt', 'path: ../b'), 'c.yaml'), /must be a relative path without \.\./);
  assert.throws(() => parseManifests(text.replace('key: a }', 'key: zz }'), 'c.yaml'), /cm has no key "zz"/);
});

test("kubelet's back-off: 10 s doubling to 5 min, from 10 s again after 10 min running", () => {
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6].map((n) => restartDelayMs(n, 1000) / 1000), [10, 20, 40, 80, 160, 300, 300]);
  assert.equal(restartDelayMs(6, 600_000), 10_000);
});

test('examples/web.yaml (the README quick start) parses with no warnings', async () => {
  const { readFileSync } = await import('node:fs');
  const root = new URL('../../../', import.meta.url).pathname;
  const { pods, warnings } = parseManifests(readFileSync(`${root}examples/web.yaml`, 'utf8'), 'examples/web.yaml');
  assert.deepEqual(warnings, []);
  assert.deepEqual(pods.map((p) => [p.name, p.initContainers.length, p.containers[0]!.ports[0]!.hostPort]), [['web', 1, 8080]]);
});
