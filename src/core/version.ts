import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// package.json is the one place the version is written. This file compiles to
// dist/src/core/version.js, three levels below the checkout root.
const pkgPath = fileURLToPath(new URL('../../../package.json', import.meta.url));

export const RUNTIME_NAME = 'cricket';
export const CRI_API_VERSION = 'v1';
// The kubelet-facing "version" field of VersionResponse: the CRI kube API version.
export const KUBE_API_VERSION = '0.1.0';

export const VERSION: string = (JSON.parse(readFileSync(pkgPath, 'utf8')) as { version: string }).version;
