import { LineCounter, parseAllDocuments, isMap, isSeq, isScalar, type Document, type Node } from 'yaml';
import { invalidArgument } from '../../core/errors.js';
import { parseQuantity } from './quantity.js';
import type { ContainerSpec, EnvVar, ParsedManifests, PodManifest, ProbeSpec, ResourcesSpec, SecuritySpec, VolumeSpec } from './manifest-types.js';

// Kubernetes Pod manifests (and the pod template of a workload) into the subset the
// reconciler runs. Every field is looked at: a known one is read and checked, an
// unknown or unsupported one is named in a warning, never silently dropped. An invalid
// one is InvalidArgument naming the field and its line.

type ConfigData = Map<string, string>;
interface ConfigObjects {
  configMaps: Map<string, ConfigData>;
  secrets: Map<string, ConfigData>;
}

const WORKLOADS = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'Job', 'ReplicaSet']);
const FIELD_REFS = new Set(['metadata.name', 'metadata.namespace', 'metadata.uid', 'status.podIP', 'spec.nodeName']);
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

class Reader {
  readonly config: ConfigObjects = { configMaps: new Map(), secrets: new Map() };
  namespace = 'default';

  constructor(
    readonly file: string,
    readonly lines: LineCounter,
    readonly warnings: string[],
  ) {}

  where(node: Node | null | undefined): string {
    const off = node?.range?.[0];
    return off === undefined ? this.file : `${this.file}:${this.lines.linePos(off).line}`;
  }

  fail(node: Node | null | undefined, path: string, msg: string): never {
    throw invalidArgument(`${this.where(node)}: ${path}: ${msg}`);
  }

  /** The entries of a map node; keys not in `known` are warned about. */
  map(node: Node | null | undefined, path: string, known: readonly string[], unsupported: readonly string[] = []): Map<string, Node> {
    const out = new Map<string, Node>();
    if (node === null || node === undefined) return out;
    if (!isMap(node)) this.fail(node, path, 'must be a mapping');
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : '';
      const value = pair.value as Node;
      if (known.includes(key)) out.set(key, value);
      else if (unsupported.includes(key)) this.warnings.push(`${this.where(pair.key as Node)}: ${path}.${key} is not supported by cricket play yet; ignored`);
      else this.warnings.push(`${this.where(pair.key as Node)}: ${path}.${key} is not a field cricket play knows; ignored`);
    }
    return out;
  }

  /** `at`: where a missing required field is reported (the mapping that lacks it). */
  str(node: Node | undefined, path: string, def?: string, at?: Node): string {
    if (node === undefined || (isScalar(node) && node.value === null)) {
      if (def === undefined) this.fail(node ?? at, path, 'is required');
      return def;
    }
    if (!isScalar(node) || typeof node.value === 'object') this.fail(node, path, 'must be a string');
    return String(node.value);
  }

  int(node: Node | undefined, path: string, def: number, min = 0, max = 2 ** 31 - 1): number {
    if (node === undefined) return def;
    const v = isScalar(node) ? node.value : undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) this.fail(node, path, `must be an integer from ${min} to ${max}`);
    return v;
  }

  bool(node: Node | undefined, path: string): boolean {
    if (node === undefined) return false;
    const v = isScalar(node) ? node.value : undefined;
    if (typeof v !== 'boolean') this.fail(node, path, 'must be true or false');
    return v;
  }

  strings(node: Node | undefined, path: string): string[] {
    if (node === undefined) return [];
    if (!isSeq(node)) this.fail(node, path, 'must be a list of strings');
    return node.items.map((n, i) => this.str(n as Node, `${path}[${i}]`));
  }

  seq(node: Node | undefined, path: string): Node[] {
    if (node === undefined) return [];
    if (!isSeq(node)) this.fail(node, path, 'must be a list');
    return node.items as Node[];
  }

  stringMap(node: Node | undefined, path: string): Record<string, string> {
    const out: Record<string, string> = {};
    if (node === undefined) return out;
    if (!isMap(node)) this.fail(node, path, 'must be a mapping of strings');
    for (const pair of node.items) {
      const k = isScalar(pair.key) ? String(pair.key.value) : '';
      out[k] = this.str(pair.value as Node, `${path}.${k}`);
    }
    return out;
  }

  oneOf<T extends string>(node: Node | undefined, path: string, allowed: readonly T[], def: T): T {
    const v = this.str(node, path, def);
    if (!allowed.includes(v as T)) this.fail(node, path, `must be one of ${allowed.join(', ')}, not "${v}"`);
    return v as T;
  }
}

function container(r: Reader, node: Node, path: string): ContainerSpec {
  const m = r.map(
    node,
    path,
    ['name', 'image', 'imagePullPolicy', 'command', 'args', 'env', 'envFrom', 'workingDir', 'ports', 'volumeMounts', 'livenessProbe', 'readinessProbe', 'startupProbe', 'resources', 'securityContext', 'lifecycle'],
    [ 'stdin', 'tty', 'terminationMessagePath', 'terminationMessagePolicy'],
  );
  const name = r.str(m.get('name'), `${path}.name`, undefined, node);
  if (!DNS_LABEL.test(name)) r.fail(m.get('name'), `${path}.name`, `"${name}" is not a DNS label (a-z, 0-9, -)`);
  const image = r.str(m.get('image'), `${path}.image`, undefined, node);
  const tag = image.includes('@') ? 'digest' : (image.split('/').pop() ?? '').includes(':') ? image.split(':').pop() : 'latest';
  const policyDefault = tag === 'latest' ? 'Always' : 'IfNotPresent';
  const env = r.seq(m.get('env'), `${path}.env`).map((e, i) => {
    const p = `${path}.env[${i}]`;
    const em = r.map(e, p, ['name', 'value', 'valueFrom']);
    const name = r.str(em.get('name'), `${p}.name`, undefined, e);
    if (!em.has('valueFrom')) return { name, value: r.str(em.get('value'), `${p}.value`, '') };
    const vf = r.map(em.get('valueFrom'), `${p}.valueFrom`, ['fieldRef', 'configMapKeyRef', 'secretKeyRef'], ['resourceFieldRef']);
    for (const refKind of ['configMapKeyRef', 'secretKeyRef'] as const) {
      if (!vf.has(refKind)) continue;
      const rp = `${p}.valueFrom.${refKind}`;
      const ref = r.map(vf.get(refKind), rp, ['name', 'key', 'optional']);
      const objName = r.str(ref.get('name'), `${rp}.name`, undefined, vf.get(refKind));
      const key = r.str(ref.get('key'), `${rp}.key`, undefined, vf.get(refKind));
      const optional = r.bool(ref.get('optional'), `${rp}.optional`);
      const data = configData(r, refKind === 'configMapKeyRef' ? 'ConfigMap' : 'Secret', objName, optional, vf.get(refKind), rp);
      const b64 = data?.get(key);
      if (b64 === undefined && !optional) r.fail(vf.get(refKind), `${rp}.key`, `${objName} has no key "${key}"`);
      return { name, value: Buffer.from(b64 ?? '', 'base64').toString('utf8') };
    }
    if (!vf.has('fieldRef')) return { name, value: '' };
    const fr = r.map(vf.get('fieldRef'), `${p}.valueFrom.fieldRef`, ['fieldPath', 'apiVersion']);
    const fieldPath = r.str(fr.get('fieldPath'), `${p}.valueFrom.fieldRef.fieldPath`, undefined, vf.get('fieldRef'));
    if (!FIELD_REFS.has(fieldPath)) r.fail(fr.get('fieldPath'), `${p}.valueFrom.fieldRef.fieldPath`, `must be one of ${[...FIELD_REFS].join(', ')}`);
    return { name, fieldPath };
  });
  // envFrom first, then env: a name in env wins, as in Kubernetes.
  const fromEnv: EnvVar[] = [];
  for (const [i, n] of r.seq(m.get('envFrom'), `${path}.envFrom`).entries()) {
    const p = `${path}.envFrom[${i}]`;
    const ef = r.map(n, p, ['configMapRef', 'secretRef', 'prefix']);
    const prefix = r.str(ef.get('prefix'), `${p}.prefix`, '');
    for (const refKind of ['configMapRef', 'secretRef'] as const) {
      if (!ef.has(refKind)) continue;
      const ref = r.map(ef.get(refKind), `${p}.${refKind}`, ['name', 'optional']);
      const objName = r.str(ref.get('name'), `${p}.${refKind}.name`, undefined, ef.get(refKind));
      const optional = r.bool(ref.get('optional'), `${p}.${refKind}.optional`);
      const data = configData(r, refKind === 'configMapRef' ? 'ConfigMap' : 'Secret', objName, optional, ef.get(refKind), `${p}.${refKind}`);
      for (const [k, b64] of data ?? []) fromEnv.push({ name: prefix + k, value: Buffer.from(b64, 'base64').toString('utf8') });
    }
  }
  const named = new Set(env.map((e) => e.name));
  const allEnv = [...fromEnv.filter((e) => !named.has(e.name)), ...env];
  const ports = r.seq(m.get('ports'), `${path}.ports`).map((n, i) => {
    const p = `${path}.ports[${i}]`;
    const pm = r.map(n, p, ['containerPort', 'hostPort', 'protocol', 'name'], ['hostIP']);
    return {
      containerPort: r.int(pm.get('containerPort'), `${p}.containerPort`, 0, 1, 65535),
      hostPort: r.int(pm.get('hostPort'), `${p}.hostPort`, 0, 0, 65535),
      protocol: r.oneOf(pm.get('protocol'), `${p}.protocol`, ['TCP', 'UDP', 'SCTP'] as const, 'TCP'),
    };
  });
  const volumeMounts = r.seq(m.get('volumeMounts'), `${path}.volumeMounts`).map((n, i) => {
    const p = `${path}.volumeMounts[${i}]`;
    const vm = r.map(n, p, ['name', 'mountPath', 'readOnly'], ['subPath', 'mountPropagation']);
    const mountPath = r.str(vm.get('mountPath'), `${p}.mountPath`, undefined, n);
    if (!mountPath.startsWith('/')) r.fail(vm.get('mountPath'), `${p}.mountPath`, 'must be an absolute path');
    return { name: r.str(vm.get('name'), `${p}.name`, undefined, n), mountPath, readOnly: r.bool(vm.get('readOnly'), `${p}.readOnly`) };
  });
  const probes: Pick<ContainerSpec, 'livenessProbe' | 'readinessProbe' | 'startupProbe'> = {};
  for (const kind of ['livenessProbe', 'readinessProbe', 'startupProbe'] as const) {
    const n = m.get(kind);
    if (n !== undefined) probes[kind] = probe(r, n, `${path}.${kind}`, kind);
  }
  return {
    ...probes,
    resources: resources(r, m.get('resources'), `${path}.resources`),
    lifecycle: lifecycle(r, m.get('lifecycle'), `${path}.lifecycle`),
    securityContext: security(r, m.get('securityContext'), `${path}.securityContext`, false),
    name,
    image,
    imagePullPolicy: r.oneOf(m.get('imagePullPolicy'), `${path}.imagePullPolicy`, ['Always', 'IfNotPresent', 'Never'] as const, policyDefault),
    command: r.strings(m.get('command'), `${path}.command`),
    args: r.strings(m.get('args'), `${path}.args`),
    env: allEnv,
    workingDir: r.str(m.get('workingDir'), `${path}.workingDir`, ''),
    ports,
    volumeMounts,
  };
}

function resources(r: Reader, node: Node | undefined, path: string): ResourcesSpec {
  const m = r.map(node, path, ['requests', 'limits'], ['claims']);
  const out: ResourcesSpec = {};
  for (const side of ['requests', 'limits'] as const) {
    const q = r.map(m.get(side), `${path}.${side}`, ['cpu', 'memory'], ['ephemeral-storage', 'hugepages-2Mi', 'hugepages-1Gi']);
    for (const kind of ['cpu', 'memory'] as const) {
      const n = q.get(kind);
      if (n === undefined) continue;
      const text = isScalar(n) ? String(n.value) : '';
      const v = parseQuantity(text, kind);
      if (v === undefined) r.fail(n, `${path}.${side}.${kind}`, `"${text}" is not a ${kind === 'cpu' ? 'CPU quantity (500m, 0.5, 2)' : 'memory quantity (64Mi, 1G, 1000)'}`);
      if (kind === 'cpu' && side === 'requests') out.cpuRequestMilli = v;
      if (kind === 'cpu' && side === 'limits') out.cpuLimitMilli = v;
      if (kind === 'memory' && side === 'limits') out.memoryLimitBytes = v;
      if (kind === 'memory' && side === 'requests') r.warnings.push(`${r.where(n)}: ${path}.requests.memory only schedules in Kubernetes; cricket play has nothing to do with it`);
    }
  }
  return out;
}

function security(r: Reader, node: Node | undefined, path: string, podLevel: boolean): SecuritySpec {
  const podFields = ['runAsUser', 'runAsGroup', 'seccompProfile'];
  const ctrFields = [...podFields, 'privileged', 'readOnlyRootFilesystem', 'allowPrivilegeEscalation', 'capabilities'];
  const m = r.map(node, path, podLevel ? podFields : ctrFields, ['runAsNonRoot', 'seLinuxOptions', 'appArmorProfile', 'procMount', 'fsGroup', 'supplementalGroups', 'sysctls', 'windowsOptions', 'fsGroupChangePolicy']);
  const out: SecuritySpec = {};
  if (m.has('runAsUser')) out.runAsUser = r.int(m.get('runAsUser'), `${path}.runAsUser`, 0);
  if (m.has('runAsGroup')) out.runAsGroup = r.int(m.get('runAsGroup'), `${path}.runAsGroup`, 0);
  if (m.has('privileged')) out.privileged = r.bool(m.get('privileged'), `${path}.privileged`);
  if (m.has('readOnlyRootFilesystem')) out.readOnlyRootFilesystem = r.bool(m.get('readOnlyRootFilesystem'), `${path}.readOnlyRootFilesystem`);
  if (m.has('allowPrivilegeEscalation')) out.allowPrivilegeEscalation = r.bool(m.get('allowPrivilegeEscalation'), `${path}.allowPrivilegeEscalation`);
  if (m.has('capabilities')) {
    const c = r.map(m.get('capabilities'), `${path}.capabilities`, ['add', 'drop']);
    out.capabilities = { add: r.strings(c.get('add'), `${path}.capabilities.add`), drop: r.strings(c.get('drop'), `${path}.capabilities.drop`) };
  }
  if (m.has('seccompProfile')) {
    const sp = r.map(m.get('seccompProfile'), `${path}.seccompProfile`, ['type', 'localhostProfile']);
    const type = r.oneOf(sp.get('type'), `${path}.seccompProfile.type`, ['RuntimeDefault', 'Unconfined', 'Localhost'] as const, 'RuntimeDefault');
    const localhostProfile = r.str(sp.get('localhostProfile'), `${path}.seccompProfile.localhostProfile`, '');
    if (type === 'Localhost' && localhostProfile === '') r.fail(m.get('seccompProfile'), `${path}.seccompProfile.localhostProfile`, 'is required with type Localhost');
    out.seccompProfile = { type, localhostProfile };
  }
  return out;
}

function dnsOf(r: Reader, node: Node | undefined, path: string): Pick<PodManifest, 'dnsConfig'> {
  if (node === undefined) return {};
  const m = r.map(node, path, ['nameservers', 'searches', 'options']);
  const options = r.seq(m.get('options'), `${path}.options`).map((o, i) => {
    const om = r.map(o, `${path}.options[${i}]`, ['name', 'value']);
    const name = r.str(om.get('name'), `${path}.options[${i}].name`, undefined, o);
    const value = r.str(om.get('value'), `${path}.options[${i}].value`, '');
    return value === '' ? name : `${name}:${value}`;
  });
  return { dnsConfig: { servers: r.strings(m.get('nameservers'), `${path}.nameservers`), searches: r.strings(m.get('searches'), `${path}.searches`), options } };
}

/** The data of a ConfigMap or Secret of the pod's namespace from the same file; undefined if optional and absent. */
function configData(r: Reader, kind: 'ConfigMap' | 'Secret', name: string, optional: boolean, at: Node | undefined, path: string): ConfigData | undefined {
  const data = (kind === 'ConfigMap' ? r.config.configMaps : r.config.secrets).get(`${r.namespace}/${name}`);
  if (data === undefined && !optional) r.fail(at, path, `${kind} ${name} is not in ${r.file} (put it there as a kind: ${kind} document, in namespace ${r.namespace})`);
  return data;
}

/** kind: ConfigMap (data, binaryData) and kind: Secret (data base64, stringData): key → base64. */
function collectConfig(r: Reader, doc: Document): void {
  const root = doc.contents as Node | null;
  if (root === null || !isMap(root)) return;
  const kindNode = root.get('kind', true) as Node | undefined;
  const kind = kindNode && isScalar(kindNode) ? String(kindNode.value) : '';
  if (kind !== 'ConfigMap' && kind !== 'Secret') return;
  const warnings: string[] = [];
  const quiet = new Reader(r.file, r.lines, warnings);
  const top = quiet.map(root, kind, ['apiVersion', 'kind', 'metadata', 'data', 'binaryData', 'stringData', 'type', 'immutable']);
  const meta = quiet.map(top.get('metadata'), 'metadata', ['name', 'namespace', 'labels', 'annotations']);
  const name = r.str(meta.get('name'), `${kind} metadata.name`, undefined, top.get('metadata') ?? root);
  const ns = r.str(meta.get('namespace'), `${kind} metadata.namespace`, 'default');
  const data: ConfigData = new Map();
  for (const [k, v] of Object.entries(r.stringMap(top.get('data'), `${kind} ${name}.data`))) {
    if (kind === 'Secret' && !/^[A-Za-z0-9+/]*={0,2}$/.test(v.replace(/\s/g, ''))) r.fail(top.get('data'), `Secret ${name}.data.${k}`, 'must be base64 (or use stringData)');
    data.set(k, kind === 'Secret' ? v.replace(/\s/g, '') : Buffer.from(v).toString('base64'));
  }
  for (const [k, v] of Object.entries(r.stringMap(top.get('binaryData'), `${kind} ${name}.binaryData`))) data.set(k, v.replace(/\s/g, ''));
  for (const [k, v] of Object.entries(r.stringMap(top.get('stringData'), `${kind} ${name}.stringData`))) data.set(k, Buffer.from(v).toString('base64'));
  (kind === 'ConfigMap' ? r.config.configMaps : r.config.secrets).set(`${ns}/${name}`, data);
  r.warnings.push(...warnings);
}

function lifecycle(r: Reader, node: Node | undefined, path: string): ContainerSpec['lifecycle'] {
  const m = r.map(node, path, ['postStart', 'preStop'], ['stopSignal']);
  const out: ContainerSpec['lifecycle'] = {};
  for (const kind of ['postStart', 'preStop'] as const) {
    const n = m.get(kind);
    if (n === undefined) continue;
    const hp = `${path}.${kind}`;
    const h = r.map(n, hp, ['exec', 'httpGet', 'sleep'], ['tcpSocket']);
    const actions = ['exec', 'httpGet', 'sleep'].filter((a) => h.has(a));
    if (actions.length !== 1) r.fail(n, hp, 'needs exactly one of exec, httpGet, sleep');
    if (h.has('exec')) {
      const e = r.map(h.get('exec'), `${hp}.exec`, ['command']);
      const command = r.strings(e.get('command'), `${hp}.exec.command`);
      if (command.length === 0) r.fail(h.get('exec'), `${hp}.exec.command`, 'is required');
      out[kind] = { exec: { command } };
    } else if (h.has('httpGet')) {
      const g = r.map(h.get('httpGet'), `${hp}.httpGet`, ['path', 'port', 'host', 'scheme'], ['httpHeaders']);
      const portNode = g.get('port');
      if (portNode === undefined) r.fail(h.get('httpGet'), `${hp}.httpGet.port`, 'is required');
      out[kind] = {
        httpGet: {
          path: r.str(g.get('path'), `${hp}.httpGet.path`, '/'),
          port: r.int(portNode, `${hp}.httpGet.port`, 0, 1, 65535),
          host: r.str(g.get('host'), `${hp}.httpGet.host`, ''),
          scheme: r.oneOf(g.get('scheme'), `${hp}.httpGet.scheme`, ['HTTP', 'HTTPS'] as const, 'HTTP'),
        },
      };
    } else {
      const sl = r.map(h.get('sleep'), `${hp}.sleep`, ['seconds']);
      out[kind] = { sleepSeconds: r.int(sl.get('seconds'), `${hp}.sleep.seconds`, 0, 0) };
    }
  }
  return out;
}

function probe(r: Reader, node: Node, path: string, kind: string): ProbeSpec {
  const m = r.map(node, path, ['exec', 'httpGet', 'tcpSocket', 'initialDelaySeconds', 'periodSeconds', 'timeoutSeconds', 'successThreshold', 'failureThreshold'], ['grpc', 'terminationGracePeriodSeconds']);
  const out: ProbeSpec = {
    initialDelaySeconds: r.int(m.get('initialDelaySeconds'), `${path}.initialDelaySeconds`, 0),
    periodSeconds: r.int(m.get('periodSeconds'), `${path}.periodSeconds`, 10, 1),
    timeoutSeconds: r.int(m.get('timeoutSeconds'), `${path}.timeoutSeconds`, 1, 1),
    successThreshold: r.int(m.get('successThreshold'), `${path}.successThreshold`, 1, 1),
    failureThreshold: r.int(m.get('failureThreshold'), `${path}.failureThreshold`, 3, 1),
  };
  if (kind !== 'readinessProbe' && out.successThreshold !== 1) r.fail(m.get('successThreshold'), `${path}.successThreshold`, 'must be 1 for liveness and startup probes');
  const actions = ['exec', 'httpGet', 'tcpSocket'].filter((a) => m.has(a));
  if (actions.length !== 1) r.fail(node, path, 'needs exactly one of exec, httpGet, tcpSocket');
  const port = (n: Node | undefined, p: string) => {
    if (n === undefined) r.fail(node, p, 'is required');
    if (n !== undefined && isScalar(n) && typeof n.value === 'string') r.fail(n, p, 'named ports are not supported; give the number');
    return r.int(n, p, 0, 1, 65535);
  };
  if (m.has('exec')) {
    const e = r.map(m.get('exec'), `${path}.exec`, ['command']);
    out.exec = { command: r.strings(e.get('command'), `${path}.exec.command`) };
    if (out.exec.command.length === 0) r.fail(m.get('exec'), `${path}.exec.command`, 'is required');
  } else if (m.has('httpGet')) {
    const h = r.map(m.get('httpGet'), `${path}.httpGet`, ['path', 'port', 'host', 'scheme'], ['httpHeaders']);
    out.httpGet = {
      path: r.str(h.get('path'), `${path}.httpGet.path`, '/'),
      port: port(h.get('port'), `${path}.httpGet.port`),
      host: r.str(h.get('host'), `${path}.httpGet.host`, ''),
      scheme: r.oneOf(h.get('scheme'), `${path}.httpGet.scheme`, ['HTTP', 'HTTPS'] as const, 'HTTP'),
    };
  } else {
    const t = r.map(m.get('tcpSocket'), `${path}.tcpSocket`, ['port', 'host']);
    out.tcpSocket = { port: port(t.get('port'), `${path}.tcpSocket.port`), host: r.str(t.get('host'), `${path}.tcpSocket.host`, '') };
  }
  return out;
}

function pod(r: Reader, doc: Document, idx: number): PodManifest | undefined {
  const root = doc.contents as Node | null;
  if (root === null) return undefined;
  const kindNode = isMap(root) ? (root.get('kind', true) as Node | undefined) : undefined;
  if (kindNode && isScalar(kindNode) && (kindNode.value === 'ConfigMap' || kindNode.value === 'Secret')) return undefined; // collected before the pods
  const top = r.map(root, `document ${idx + 1}`, ['apiVersion', 'kind', 'metadata', 'spec'], ['status']);
  const kind = r.str(top.get('kind'), 'kind', undefined, root);
  let meta = r.map(top.get('metadata'), 'metadata', ['name', 'namespace', 'labels', 'annotations'], ['uid', 'generateName', 'ownerReferences', 'creationTimestamp']);
  let specNode = top.get('spec');
  let specPath = 'spec';
  const name = r.str(meta.get('name'), 'metadata.name', undefined, top.get('metadata') ?? root);
  const namespace = r.str(meta.get('namespace'), 'metadata.namespace', 'default');
  r.namespace = namespace;
  if (WORKLOADS.has(kind)) {
    const ws = r.map(specNode, 'spec', ['template', 'replicas', 'selector', 'serviceName'], ['strategy', 'updateStrategy', 'volumeClaimTemplates', 'backoffLimit', 'completions', 'parallelism']);
    const replicas = ws.get('replicas');
    if (replicas !== undefined && r.int(replicas, 'spec.replicas', 1) !== 1) r.warnings.push(`${r.where(replicas)}: spec.replicas: cricket play runs one replica`);
    const tpl = r.map(ws.get('template'), 'spec.template', ['metadata', 'spec']);
    meta = new Map([...meta, ...r.map(tpl.get('metadata'), 'spec.template.metadata', ['name', 'namespace', 'labels', 'annotations'])]);
    specNode = tpl.get('spec');
    specPath = 'spec.template.spec';
  } else if (kind !== 'Pod') {
    r.warnings.push(`${r.where(top.get('kind'))}: kind ${kind} is not a Pod or a workload with a pod template; skipped`);
    return undefined;
  }
  if (!DNS_LABEL.test(name) || name.length > 63) r.fail(top.get('metadata'), 'metadata.name', `"${name}" is not a DNS label (a-z, 0-9, -; at most 63)`);
  if (specNode === undefined) r.fail(root, specPath, 'is required');
  const s = r.map(
    specNode,
    specPath,
    ['containers', 'initContainers', 'volumes', 'restartPolicy', 'hostname', 'hostNetwork', 'terminationGracePeriodSeconds', 'runtimeClassName', 'nodeName', 'securityContext', 'dnsConfig'],
    ['dnsConfig', 'dnsPolicy', 'affinity', 'tolerations', 'nodeSelector', 'serviceAccountName', 'imagePullSecrets', 'subdomain', 'hostPID', 'hostIPC', 'shareProcessNamespace', 'priorityClassName', 'activeDeadlineSeconds'],
  );
  const containers = r.seq(s.get('containers'), `${specPath}.containers`).map((n, i) => container(r, n, `${specPath}.containers[${i}]`));
  if (containers.length === 0) r.fail(specNode, `${specPath}.containers`, 'needs at least one container');
  const initContainers = r.seq(s.get('initContainers'), `${specPath}.initContainers`).map((n, i) => container(r, n, `${specPath}.initContainers[${i}]`));
  const seen = new Set<string>();
  for (const c of [...initContainers, ...containers]) {
    if (seen.has(c.name)) r.fail(specNode, `${specPath}.containers`, `two containers are named "${c.name}"`);
    seen.add(c.name);
  }
  const volumes = r.seq(s.get('volumes'), `${specPath}.volumes`).map((n, i): VolumeSpec => {
    const p = `${specPath}.volumes[${i}]`;
    const vm = r.map(n, p, ['name', 'emptyDir', 'hostPath', 'configMap', 'secret'], ['persistentVolumeClaim', 'projected', 'downwardAPI']);
    const vname = r.str(vm.get('name'), `${p}.name`, undefined, n);
    for (const kind of ['configMap', 'secret'] as const) {
      if (!vm.has(kind)) continue;
      const vp = `${p}.${kind}`;
      const cm = r.map(vm.get(kind), vp, [kind === 'configMap' ? 'name' : 'secretName', 'items', 'optional'], ['defaultMode']);
      const objName = r.str(cm.get(kind === 'configMap' ? 'name' : 'secretName'), `${vp}.${kind === 'configMap' ? 'name' : 'secretName'}`, undefined, vm.get(kind));
      const optional = r.bool(cm.get('optional'), `${vp}.optional`);
      const data = configData(r, kind === 'configMap' ? 'ConfigMap' : 'Secret', objName, optional, vm.get(kind), vp) ?? new Map<string, string>();
      let files = [...data].map(([key, dataB64]) => ({ path: key, dataB64 }));
      if (cm.has('items')) {
        files = r.seq(cm.get('items'), `${vp}.items`).map((it, i) => {
          const ip = `${vp}.items[${i}]`;
          const im = r.map(it, ip, ['key', 'path'], ['mode']);
          const key = r.str(im.get('key'), `${ip}.key`, undefined, it);
          const path = r.str(im.get('path'), `${ip}.path`, undefined, it);
          if (path.startsWith('/') || path.split('/').includes('..')) r.fail(im.get('path'), `${ip}.path`, 'must be a relative path without ..');
          const b64 = data.get(key);
          if (b64 === undefined) r.fail(im.get('key'), `${ip}.key`, `${objName} has no key "${key}"`);
          return { path, dataB64: b64 };
        });
      }
      return { name: vname, files };
    }
    if (vm.has('emptyDir')) {
      const ed = r.map(vm.get('emptyDir'), `${p}.emptyDir`, ['medium', 'sizeLimit']);
      const medium = r.oneOf(ed.get('medium'), `${p}.emptyDir.medium`, ['', 'Memory'] as const, '');
      let sizeBytes: number | undefined;
      const sl = ed.get('sizeLimit');
      if (sl !== undefined) {
        const text = isScalar(sl) ? String(sl.value) : '';
        sizeBytes = parseQuantity(text, 'memory');
        if (sizeBytes === undefined || sizeBytes <= 0) r.fail(sl, `${p}.emptyDir.sizeLimit`, `"${text}" is not a size (64Mi, 1G)`);
        // A tmpfs is sized by it; a directory on disk is not watched.
        if (medium !== 'Memory') r.warnings.push(`${r.where(sl)}: ${p}.emptyDir.sizeLimit is enforced only with medium: Memory; ignored`);
      }
      return { name: vname, emptyDir: { medium, ...(sizeBytes !== undefined ? { sizeBytes } : {}) } };
    }
    if (vm.has('hostPath')) {
      const hp = r.map(vm.get('hostPath'), `${p}.hostPath`, ['path'], ['type']);
      const hpath = r.str(hp.get('path'), `${p}.hostPath.path`, undefined, vm.get('hostPath'));
      if (!hpath.startsWith('/')) r.fail(hp.get('path'), `${p}.hostPath.path`, 'must be an absolute path');
      return { name: vname, hostPath: { path: hpath } };
    }
    return { name: vname };
  });
  const volNames = new Set(volumes.map((v) => v.name));
  for (const c of [...initContainers, ...containers]) {
    for (const vm of c.volumeMounts) if (!volNames.has(vm.name)) r.fail(specNode, `${specPath} container ${c.name}`, `mounts volume "${vm.name}", which spec.volumes does not have`);
  }
  return {
    name,
    namespace,
    labels: r.stringMap(meta.get('labels'), 'metadata.labels'),
    annotations: r.stringMap(meta.get('annotations'), 'metadata.annotations'),
    hostname: r.str(s.get('hostname'), `${specPath}.hostname`, name),
    hostNetwork: r.bool(s.get('hostNetwork'), `${specPath}.hostNetwork`),
    restartPolicy: r.oneOf(s.get('restartPolicy'), `${specPath}.restartPolicy`, ['Always', 'OnFailure', 'Never'] as const, kind === 'Job' ? 'OnFailure' : 'Always'),
    terminationGracePeriodSeconds: r.int(s.get('terminationGracePeriodSeconds'), `${specPath}.terminationGracePeriodSeconds`, 30),
    runtimeClassName: r.str(s.get('runtimeClassName'), `${specPath}.runtimeClassName`, ''),
    securityContext: security(r, s.get('securityContext'), `${specPath}.securityContext`, true),
    ...dnsOf(r, s.get('dnsConfig'), `${specPath}.dnsConfig`),
    initContainers,
    containers,
    volumes,
  };
}

/** Parses every document of a manifest file; `file` names it in messages. */
export function parseManifests(text: string, file: string): ParsedManifests {
  const lines = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lines });
  const warnings: string[] = [];
  const r = new Reader(file, lines, warnings);
  if (!Array.isArray(docs)) throw invalidArgument(`${file}: not YAML`);
  const pods: PodManifest[] = [];
  for (const doc of docs) {
    const err = doc.errors[0];
    if (err) throw invalidArgument(`${file}:${err.linePos?.[0]?.line ?? '?'}: ${err.message.split('\n')[0]}`);
    collectConfig(r, doc);
  }
  for (const [i, doc] of docs.entries()) {
    const p = pod(r, doc, i);
    if (!p) continue;
    if (pods.some((q) => q.name === p.name && q.namespace === p.namespace)) throw invalidArgument(`${file}: two pods are named ${p.namespace}/${p.name}`);
    pods.push(p);
  }
  return { pods, warnings };
}
