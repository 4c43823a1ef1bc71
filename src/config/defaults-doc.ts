import { stringify } from 'smol-toml';
import { defaultConfig, type Config } from './schema.js';

// One line of explanation per key, printed above it by `cricket config --defaults`.
const DOCS: Record<string, string> = {
  daemon: 'The daemon itself: where it listens and keeps state.',
  'daemon.listen': 'Unix socket serving the CRI (kubelet: --container-runtime-endpoint=unix://<this>).',
  'daemon.root': 'Durable state: blobs, unpacked layers, image, pod and container records.',
  'daemon.run_root': 'State that must vanish at reboot: pinned namespaces, bundles, conmon files, mounts.',
  'daemon.log_level': 'trace, debug, info, warn, error or fatal.',
  'daemon.shutdown_grace_seconds': 'On SIGTERM, how long in-flight RPCs may take before the daemon exits anyway.',
  'daemon.recovery_item_timeout_seconds': 'At start, how long recovering one pod or container may take.',
  'daemon.grpc_max_message_bytes': 'Largest gRPC message accepted or sent.',
  runtime: 'The OCI runtimes that run containers, and how they are monitored.',
  'runtime.default_handler': 'Handler used when a pod names none (runtime_handler "").',
  'runtime.handlers':
    [
      'OCI runtimes by handler name (a pod\'s runtime_handler, a RuntimeClass\'s handler).',
      'A "runc" handler at /usr/sbin/runc is always present unless redefined. Per handler:',
      'path, root (its state dir; empty: <run_root>/<name>), runtime_type ("oci": runc, crun;',
      '"sandbox": gVisor\'s runsc, one gVisor sandbox per pod, in the pod\'s network',
      'namespace, that all its containers join), runtime_args (flags before every subcommand), allowed_annotations',
      '(pod annotations copied into the OCI spec; "prefix*" allowed), privileged_without_host_devices,',
      'recursive_read_only_mounts (reported to kubelet in Status) and user_namespaces (pods with',
      'hostUsers: false; offered on an "oci" handler only where the start-up idmap probe passes). Examples:',
      '[runtime.handlers.crun]',
      'path = "/usr/bin/crun"',
      '',
      '[runtime.handlers.runsc]          # gVisor: apt-get install -t bookworm-backports runsc',
      'path = "/usr/bin/runsc"',
      'runtime_type = "sandbox"',
      'runtime_args = ["--platform=systrap"]',
      'allowed_annotations = ["dev.gvisor.*"]',
      'privileged_without_host_devices = true',
    ].join('\n'),
  'runtime.cgroup_driver': 'cgroupfs or systemd; must match kubelet\'s --cgroup-driver.',
  'runtime.conmon': 'conmon binary: the per-container monitor holding stdio, logs and exit status.',
  'runtime.catatonit': 'Init used as the pod\'s first process when containers share a PID namespace.',
  'runtime.restrict_oom_score_adj':
    'Clamp oom_score_adj to the daemon\'s own: true, false, or "auto" (when CAP_SYS_RESOURCE is missing).',
  'runtime.pod_cidr': 'Pod CIDR; kubelet sets it through UpdateRuntimeConfig.',
  network: 'Pod networking through CNI.',
  'network.cni_conf_dir': 'Directory holding the CNI network configuration (.conflist, .conf); the first valid one is used.',
  'network.cni_bin_dirs': 'Directories searched for CNI plugin binaries, in order.',
  'network.plugin_timeout_seconds': 'Longest one CNI plugin call may take.',
  images: 'Image pulls and the image store.',
  'images.registries_conf': 'containers-registries.conf(5) file: mirrors, insecure and blocked registries, search list.',
  'images.registries_conf_dir': 'Drop-in directory for registries.conf, read in name order after the file.',
  'images.pull_progress_timeout_seconds': 'A pull with no bytes received for this long is cancelled.',
  'images.max_concurrent_downloads': 'Layers downloaded at once per pull.',
  'images.pinned_images': 'Images never removed by kubelet\'s image GC (reported as pinned).',
  streaming: 'The HTTP server for exec, attach and port-forward sessions.',
  'streaming.address': 'Address the streaming server binds.',
  'streaming.port': 'Port of the streaming server; 0 picks a free one.',
  'streaming.tls_cert': 'PEM certificate to serve streaming over TLS (with tls_key); empty serves plain HTTP.',
  'streaming.tls_key': 'PEM private key for tls_cert.',
  'streaming.token_ttl_seconds': 'How long an Exec/Attach/PortForward URL stays valid.',
  'streaming.max_tokens': 'Most unused streaming URLs held at once.',
  metrics: 'Prometheus metrics of the daemon itself.',
  'metrics.address': 'host:port serving GET /metrics (e.g. "127.0.0.1:9090"); empty (the default) serves none.',
  tracing: 'OpenTelemetry traces: a span per RPC with children for CNI, the OCI runtime, conmon and registries.',
  'tracing.endpoint': 'OTLP/HTTP traces URL (e.g. "http://127.0.0.1:4318/v1/traces"); empty (the default) traces nothing.',
  logs: 'Container log files.',
  'logs.allowed_roots':
    'A pod\'s log_directory must be under one of these; empty allows any absolute path.\nExample: ["/var/log/pods"], kubelet\'s layout.',
  pods: 'Pods cricketd runs from Kubernetes manifests itself (`cricket play`).',
  'pods.manifest_dir':
    'Directory of Pod manifests (*.yaml, *.yml) kept running, as kubelet\'s staticPodPath: a file added is played,\nchanged is converged, removed takes its pods with it. Empty: off.',
  'pods.log_dir': 'Where the log directories of pods from manifest_dir go (cricket play passes its own).',
};

export function configDocs(): Readonly<Record<string, string>> {
  return DOCS;
}

const comment = (text: string) =>
  text
    .split('\n')
    .map((l) => `# ${l}`)
    .join('\n');

/** The full default configuration as TOML with a comment above every key. */
export function renderDefaults(cfg: Config = defaultConfig()): string {
  const out: string[] = [
    '# cricketd configuration. Every key is shown with its default.',
    '# Files in the drop-in directory (cricket.d/*.toml) are merged over this one in name order;',
    '# command-line flags override both.',
  ];
  for (const [section, values] of Object.entries(cfg)) {
    out.push('', comment(DOCS[section] ?? section), `[${section}]`);
    const tables: [string, Record<string, unknown>][] = [];
    for (const [key, value] of Object.entries(values as Record<string, unknown>)) {
      if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
        tables.push([key, value as Record<string, unknown>]);
        continue;
      }
      const doc = DOCS[`${section}.${key}`];
      if (doc) out.push(comment(doc));
      out.push(stringify({ [key]: value }).trim());
    }
    // TOML wants a section's plain keys before its sub-tables.
    for (const [key, value] of tables) {
      const doc = DOCS[`${section}.${key}`];
      out.push('', doc ? comment(doc) : '');
      out.push(stringify({ [section]: { [key]: value } }).trim());
    }
  }
  return out.join('\n') + '\n';
}
