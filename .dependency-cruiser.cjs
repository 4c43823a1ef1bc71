// The layering rules of ARCHITECTURE.md, checked by `make lint` (part of `make test`).
// Each rule's comment is what a violation prints: it names the rule and why it exists.
const ADAPTERS = '(registry|content|snapshots|cni|runtime|streams|oci|metrics|tracing)';
const LOWER = `(${ADAPTERS.slice(1, -1)}|host|store|core|config|gen)`;

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      severity: 'error',
      comment: 'Import cycles (type-only imports count) tangle the areas: split a face (api.ts) from the code that assembles it.',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'grpc-layer-on-top',
      severity: 'error',
      comment: 'The gRPC layer (src/server/) sits on top of the use cases: nothing under src/services/ may import it. Shared RPC types live in src/core/rpc.ts.',
      from: { path: '^src/services/' },
      to: { path: '^src/server/' },
    },
    {
      name: 'adapters-import-no-use-case',
      severity: 'error',
      comment: 'Adapters and lower modules (registry, content, snapshots, cni, runtime, streams, oci, metrics, tracing, host, store, core, config) import no use case, no gRPC layer and no entry point: they declare the types they take.',
      from: { path: `^src/${LOWER}/` },
      to: { path: '^src/(services|server|daemon|cli|client)/' },
    },
    {
      name: 'areas-meet-through-faces',
      severity: 'error',
      comment: 'One area uses another only through its types-only face, services/<area>/api.ts.',
      from: { path: '^src/services/([^/]+)/' },
      to: { path: '^src/services/([^/]+)/', pathNot: ['^src/services/$1/', '^src/services/[^/]+/api\\.ts$', '^src/services/events/'] },
    },
    {
      name: 'faces-are-types-only',
      severity: 'error',
      comment: 'An area face (api.ts) carries types only, so importing it never pulls in the area.',
      from: { path: '^src/services/[^/]+/api\\.ts$' },
      to: { dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'oci-is-pure',
      severity: 'error',
      comment: 'src/oci/ turns CRI config + image config + pod facts into an OCI spec without touching the host: it imports only core/, gen/ and itself (and no fs, process or network module).',
      from: { path: '^src/oci/' },
      to: { pathNot: ['^src/(oci|core|gen)/', '^(node:)?(path|os)$'] },
    },
    {
      name: 'core-imports-nothing-of-ours',
      severity: 'error',
      comment: 'src/core/ is imported by all and imports nothing of ours but the generated protocol types.',
      from: { path: '^src/core/' },
      to: { path: '^src/', pathNot: ['^src/(core|gen)/'] },
    },
    {
      name: 'host-and-store-are-the-ground',
      severity: 'error',
      comment: 'src/host/ (the OS seam) and src/store/ (durable records) stand on core/ alone, so every module above may use them.',
      from: { path: '^src/(host|store)/' },
      to: { path: '^src/', pathNot: ['^src/(core|gen)/', '^src/$1/'] },
    },
    {
      name: 'processes-spawn-in-host-or-runtime',
      severity: 'error',
      comment: 'Processes are spawned only in src/host/ (the OS seam) and src/runtime/ (the conmon + runc driver); everything else calls them.',
      from: { path: '^src/', pathNot: ['^src/(host|runtime)/'] },
      to: { path: '^(node:)?child_process$' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'], extensions: ['.ts', '.js'] },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
