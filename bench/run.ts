import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// `make bench`: runs every compiled bench script beside this one (dist/bench/*.js), one
// after another so they do not compete for the two cores, and passes their output
// through. Each script is standalone: it starts its own daemon/registry and prints
// its figures. BENCH=name1,name2 picks a subset.
const here = dirname(fileURLToPath(import.meta.url));
const only = process.env['BENCH']?.split(',').filter(Boolean);
const scripts = readdirSync(here)
  .filter((f) => f.endsWith('.js') && f !== 'run.js' && !f.startsWith('lib-'))
  .filter((f) => !only || only.includes(f.replace(/\.js$/, '')))
  .sort();
let failed = 0;
for (const script of scripts) {
  process.stdout.write(`\n== ${script.replace(/\.js$/, '')} ==\n`);
  const res = spawnSync(process.execPath, [join(here, script)], { stdio: 'inherit' });
  if (res.status !== 0) {
    failed += 1;
    process.stdout.write(`(${script} failed with ${res.status ?? res.signal})\n`);
  }
}
process.exit(failed > 0 ? 1 : 0);
