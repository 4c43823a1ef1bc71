import { z } from 'zod';
import { parseHostPort } from './host-port.js';

// The whole configuration of cricketd. Every key has a default, so an empty file
// (or none) is a valid configuration; objects are strict so a misspelt key is an
// error naming it rather than a silently ignored setting. Keep DOCS in
// config/defaults-doc.ts in step with this file: it documents every key.

const seconds = (d: number) => z.number().positive().max(86_400).default(d);
const absPath = (d: string) =>
  z.string().refine((s) => s.startsWith('/'), { message: 'must be an absolute path' }).default(d);
const optPath = z
  .string()
  .refine((s) => s === '' || s.startsWith('/'), { message: 'must be empty or an absolute path' })
  .default('');

export const HandlerSchema = z.strictObject({
  path: absPath('/usr/sbin/runc'),
  // runc's --root: where it keeps container state. Empty: <run_root>/<handler name>.
  root: optPath,
  // "oci": runc, crun — containers join the pod's pinned namespaces. "sandbox": gVisor's
  // runsc — one gVisor sandbox per pod, which its containers join (runtime/handler.ts).
  runtime_type: z.enum(['oci', 'sandbox']).default('oci'),
  // Global flags given before every subcommand (e.g. ["--platform=systrap"]).
  runtime_args: z.array(z.string().min(1)).default([]),
  // Pod annotations (exact keys, or a prefix ending in "*") copied into containers' OCI specs.
  allowed_annotations: z.array(z.string().min(1)).default([]),
  // A privileged container's device cgroup stays closed to host devices (gVisor's kernel cannot use them).
  privileged_without_host_devices: z.boolean().default(false),
  // What the handler may do; Status reports these to kubelet.
  recursive_read_only_mounts: z.boolean().default(true),
  // Offer pods their own user namespace (hostUsers: false) on an "oci" handler when the
  // start-up probe shows the node can idmap (host/userns.ts); false never offers it.
  user_namespaces: z.boolean().default(true),
});

export const ConfigSchema = z.strictObject({
  daemon: z
    .strictObject({
      listen: absPath('/run/cricket/cricket.sock'),
      root: absPath('/var/lib/cricket'),
      run_root: absPath('/run/cricket'),
      log_level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info'),
      shutdown_grace_seconds: seconds(10),
      recovery_item_timeout_seconds: seconds(30),
      grpc_max_message_bytes: z.number().int().min(1 << 20).max(1 << 30).default(16 << 20),
    })
    .prefault({}),
  runtime: z
    .strictObject({
      default_handler: z.string().min(1).default('runc'),
      handlers: z.record(z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/), HandlerSchema).prefault({ runc: {} }),
      cgroup_driver: z.enum(['cgroupfs', 'systemd']).default('cgroupfs'),
      conmon: absPath('/usr/bin/conmon'),
      catatonit: absPath('/usr/bin/catatonit'),
      // "auto": clamp oom_score_adj to the daemon's own when it lacks CAP_SYS_RESOURCE.
      restrict_oom_score_adj: z.union([z.boolean(), z.literal('auto')]).default('auto'),
      pod_cidr: z.string().default(''),
    })
    .prefault({}),
  network: z
    .strictObject({
      cni_conf_dir: absPath('/etc/cni/net.d'),
      cni_bin_dirs: z.array(z.string().refine((s) => s.startsWith('/'), 'must be an absolute path')).min(1).default([
        '/usr/lib/cni',
        '/opt/cni/bin',
      ]),
      plugin_timeout_seconds: seconds(60),
    })
    .prefault({}),
  images: z
    .strictObject({
      registries_conf: absPath('/etc/containers/registries.conf'),
      registries_conf_dir: absPath('/etc/containers/registries.conf.d'),
      pull_progress_timeout_seconds: seconds(60),
      max_concurrent_downloads: z.number().int().min(1).max(32).default(3),
      pinned_images: z.array(z.string()).default([]),
    })
    .prefault({}),
  streaming: z
    .strictObject({
      address: z.string().min(1).default('127.0.0.1'),
      port: z.number().int().min(0).max(65535).default(0),
      tls_cert: optPath,
      tls_key: optPath,
      token_ttl_seconds: seconds(60),
      max_tokens: z.number().int().min(1).max(100_000).default(1000),
    })
    .prefault({}),
  metrics: z
    .strictObject({
      // host:port to serve Prometheus metrics on (GET /metrics); empty: no metrics server.
      address: z
        .string()
        .default('')
        .superRefine((s, ctx) => {
          if (s === '') return;
          const r = parseHostPort(s);
          if (typeof r === 'string') ctx.addIssue({ code: 'custom', message: r });
        }),
    })
    .prefault({}),
  tracing: z
    .strictObject({
      // OTLP/HTTP traces endpoint (e.g. http://127.0.0.1:4318/v1/traces); empty: no tracing.
      endpoint: z
        .string()
        .default('')
        .refine((s) => s === '' || /^https?:\/\/[^/\s]+(\/\S*)?$/.test(s), { message: 'must be empty or an http:// or https:// URL' }),
    })
    .prefault({}),
  logs: z
    .strictObject({
      // Roots a pod's log_directory must live under; empty (the default, as in
      // containerd and CRI-O) allows any absolute path. Set ["/var/log/pods"] to pin
      // logs to kubelet's own layout.
      allowed_roots: z
        .array(z.string().refine((s) => s.startsWith('/'), 'must be an absolute path'))
        .default([]),
    })
    .prefault({}),
  pods: z
    .strictObject({
      // Like kubelet's staticPodPath: every *.yaml / *.yml here is played and kept
      // running, and its pods removed when the file goes. Empty: off.
      manifest_dir: optPath,
      log_dir: absPath('/var/log/pods'),
    })
    .prefault({}),
});

export type Config = z.output<typeof ConfigSchema>;
export type HandlerConfig = z.output<typeof HandlerSchema>;

/** The configuration with nothing set: what `cricket config --defaults` prints. */
export function defaultConfig(): Config {
  return ConfigSchema.parse({});
}
