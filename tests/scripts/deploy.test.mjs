// The deploy path: `wrangler deploy` runs wrangler.toml's [build] command, which must build the
// page's wasm (www/pkg) along with the Worker, or the dashboard ships without its simulator.
// Checked with `wrangler deploy --dry-run` (no account needed), the web build sent to a
// scratch directory (VASCO_WEB_OUT) so that it is built fresh and www/pkg is left alone.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';

import { ROOT } from '../support/wrangler.mjs';
import { run } from './run.mjs';

test('wrangler deploy builds the page\'s wasm as well as the Worker', async () => {
  // Under the repository, so that its package.json makes the web build's .js an ES module.
  await mkdir(join(ROOT, 'target'), { recursive: true });
  const scratch = await mkdtemp(join(ROOT, 'target', 'deploy-test-'));
  const web = join(scratch, 'pkg');
  try {
    const { code, output } = await run(join(ROOT, 'node_modules', '.bin', 'wrangler'), ['deploy', '--dry-run', '--outdir', join(scratch, 'dist')], {
      VASCO_WEB_OUT: web,
      WRANGLER_SEND_METRICS: 'false',
      ...Object.fromEntries(['CARGO_HOME', 'RUSTUP_HOME'].filter((k) => process.env[k]).map((k) => [k, process.env[k]])),
    });
    assert.equal(code, 0, output);
    assert.match(output, /--dry-run: exiting now/);
    for (const file of ['vasco_wasm.js', 'vasco_wasm_bg.wasm']) assert.ok(existsSync(join(web, file)), `${file} built:\n${output}`);

    // Complete and current: it loads and answers what the page asks of it.
    const wasm = await import(pathToFileURL(join(web, 'vasco_wasm.js')).href);
    wasm.initSync({ module: await readFile(join(web, 'vasco_wasm_bg.wasm')) });
    assert.equal(wasm.serviceName('@acme/api'), 'acme.api');
    assert.equal(wasm.heartbeatPeriod(9000), 3000);
    assert.ok(wasm.strategies().includes('maglev'));
  } finally {
    await rm(scratch, { recursive: true, force: true });
    // build-wasm.sh's up-to-date stamp for the scratch output.
    const stamps = join(ROOT, 'target', 'vasco-build-stamps');
    for (const name of await readdir(stamps).catch(() => [])) {
      if (name.includes(basename(scratch))) await rm(join(stamps, name), { force: true });
    }
  }
});
