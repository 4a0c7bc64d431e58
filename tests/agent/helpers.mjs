// Shared helpers of the `vasco agent` suites (tests/agent/*.test.mjs): start the agent as the
// real command (`node crates/vasco-wasm/pkg/bin/vasco.cjs agent ...`) and talk to it.
import { spawn } from 'node:child_process';
import { promises as dnsPromises } from 'node:dns';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { freePort } from '../support/wrangler.mjs';
import { PKG, waitFor } from '../npm/helpers.mjs';

export { PKG, waitFor };

/** The built command. */
export const BIN = join(PKG, 'bin', 'vasco.cjs');

const agents = new Set();
process.on('exit', () => {
  for (const child of agents) {
    try {
      child.kill('SIGKILL');
    } catch {
      // gone
    }
  }
});

/**
 * Starts `vasco agent` against `server` (a startWrangler() handle) on free ports; resolves when
 * its HTTP API answers. `args` are more flags.
 */
export async function startAgent(server, args = [], env = {}) {
  if (!existsSync(BIN)) throw new Error(`the npm package is not built (${BIN}); run: bash scripts/build-wasm.sh`);
  const httpPort = await freePort();
  const dnsPort = await freePort();
  const child = spawn(
    process.execPath,
    [BIN, 'agent', '--http-addr', `127.0.0.1:${httpPort}`, '--dns-addr', `127.0.0.1:${dnsPort}`, ...args],
    {
      env: { ...process.env, VASCO_URL: server.url, VASCO_TOKEN: server.token, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  agents.add(child);
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk) => (output += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk) => (output += chunk));
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      agents.delete(child);
      resolve({ code, signal });
    });
  });
  let gone = null;
  exited.then((info) => (gone = info));
  const url = `http://127.0.0.1:${httpPort}`;
  await waitFor(
    async () => {
      if (gone) throw new Error(`vasco agent exited ${JSON.stringify(gone)}:\n${output}`);
      const res = await fetch(`${url}/v1/agent/self`);
      return res.status === 200;
    },
    { timeout: 20_000, message: `vasco agent to answer on ${url}` },
  ).catch((error) => {
    child.kill('SIGKILL');
    throw new Error(`${error.message}\n${output}`);
  });
  return {
    url,
    httpPort,
    dnsPort,
    child,
    exited,
    output: () => output,
    fetch: (path, init) => fetch(url + path, init),
    /** A Node resolver pointed at the agent's DNS. */
    resolver() {
      const resolver = new dnsPromises.Resolver({ timeout: 2_000, tries: 1 });
      resolver.setServers([`127.0.0.1:${dnsPort}`]);
      return resolver;
    },
    async stop(signal = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** The live instances the edge lists for `name` (consistent read; `query` adds parameters). */
export async function edgeInstances(server, name, query = '') {
  const res = await server.fetch(`/v1/services/${name}?consistent${query}`);
  if (res.status !== 200) throw new Error(`GET /v1/services/${name}: ${res.status} ${await res.text()}`);
  return (await res.json()).instances;
}
