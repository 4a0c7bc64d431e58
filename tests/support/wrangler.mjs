// Starts the Vasco Worker under a real `wrangler dev --local` for a test suite, and always stops
// it. Used by every Node and browser suite (tests/**/*.test.mjs).
//
//   import { after, before, test } from 'node:test';
//   import { startWrangler } from '../support/wrangler.mjs';
//
//   let server;
//   before(async () => { server = await startWrangler(); });
//   after(() => server?.stop());
//
//   test('health', async () => {
//     const res = await server.fetch('/health');                 // relative to server.url
//     await server.fetch('/v1/services/api/1.0.0/instances/a', {
//       method: 'PUT', headers: server.auth(), body: JSON.stringify({ url: 'h:1' }) });
//   });
//
// What it does:
// * Builds nothing. It runs wrangler with VASCO_SKIP_BUILD=1, so wrangler.toml's [build] step
//   reuses build/ (scripts/test.sh builds once before the Node suites; run
//   `bash scripts/build-worker.sh` yourself when running a suite by hand). A missing build is
//   reported with that advice.
// * Listens on a free 127.0.0.1 port (and a free inspector port, so suites can run in parallel),
//   with a fresh temporary KV directory (--persist-to) removed on stop.
// * Sets VASCO_TOKEN to a random test token (or the one given), VASCO_READ_TOKEN,
//   VASCO_PUBLIC_READS and VASCO_CACHE_MS explicitly, so a developer's .dev.vars never leaks
//   into a test.
// * Waits until GET /health answers 200, polling against a deadline (no fixed sleep); fails early
//   with wrangler's output if wrangler exits.
// * stop() kills wrangler's whole process group (wrangler and its workerd), waits for it to exit,
//   and deletes the KV directory. It is idempotent. A process 'exit' hook kills the group too,
//   should a suite crash before its after() hook runs.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

const WRANGLER = join(ROOT, 'node_modules', '.bin', 'wrangler');
const running = new Set();

process.on('exit', () => {
  for (const child of running) killGroup(child, 'SIGKILL');
});

/** A free TCP port on 127.0.0.1 (the OS picks it; the socket is closed again at once). */
export function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

function killGroup(child, signal) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts `wrangler dev --local` with the built Worker.
 *
 * @param {object} [options]
 * @param {string|null} [options.token] write token (VASCO_TOKEN); default a random one;
 *   `null` starts the Worker without a write token (writes answer 503).
 * @param {string} [options.readToken] VASCO_READ_TOKEN; default none.
 * @param {boolean} [options.publicReads] VASCO_PUBLIC_READS: reads need no token; default true
 *   unless a readToken is given (the deployed default is closed reads: see the README).
 * @param {boolean} [options.rateLimit] VASCO_RATE_LIMIT: the per-client limit of wrangler.toml
 *   (600 a minute); default off, since a suite sends many requests from one address.
 * @param {number} [options.cacheMs] VASCO_CACHE_MS, the isolate cache lifetime; default 0 (off).
 * @param {Record<string,string>} [options.vars] more `--var`s.
 * @param {number} [options.timeoutMs] how long to wait for /health; default 90 s.
 * @param {string} [options.persistDir] keep state in this directory (and leave it on stop), to
 *   restart on the same state; default a fresh temporary directory removed on stop.
 * @param {number} [options.port] listen on this port (to restart a stopped server where its
 *   clients expect it); default a free one.
 * @returns {Promise<{url: string, port: number, token: string|null, persistDir: string,
 *   fetch: (path: string, init?: RequestInit) => Promise<Response>,
 *   auth: (extra?: Record<string,string>) => Record<string,string>,
 *   logs: () => string, stop: () => Promise<void>}>}
 */
export async function startWrangler(options = {}) {
  const {
    token = `test-${randomBytes(12).toString('hex')}`,
    readToken = '',
    publicReads = !readToken,
    rateLimit = false,
    cacheMs = 0,
    vars = {},
    timeoutMs = 90_000,
    persistDir: keptDir,
    port: fixedPort,
  } = options;

  if (!existsSync(WRANGLER)) {
    throw new Error(`wrangler is not installed (${WRANGLER}); run: bash scripts/setup.sh`);
  }
  if (!existsSync(join(ROOT, 'build', 'index.js')) || !existsSync(join(ROOT, 'build', 'index_bg.wasm'))) {
    throw new Error('the Worker is not built (build/index.js); run: bash scripts/build-worker.sh');
  }

  const port = fixedPort ?? (await freePort());
  const inspectorPort = await freePort();
  const persistDir = keptDir ?? (await mkdtemp(join(tmpdir(), 'vasco-kv-')));
  const allVars = {
    VASCO_TOKEN: token ?? '',
    VASCO_READ_TOKEN: readToken,
    VASCO_PUBLIC_READS: publicReads ? 'true' : 'false',
    VASCO_RATE_LIMIT: rateLimit ? 'on' : 'off',
    VASCO_CACHE_MS: String(cacheMs),
    ...vars,
  };
  const args = [
    'dev',
    '--local',
    '--ip', '127.0.0.1',
    '--port', String(port),
    '--inspector-port', String(inspectorPort),
    '--persist-to', persistDir,
    '--show-interactive-dev-session=false',
    '--log-level', process.env.VASCO_WRANGLER_LOG_LEVEL ?? 'info',
  ];
  for (const [key, value] of Object.entries(allVars)) args.push('--var', `${key}:${value}`);

  const child = spawn(WRANGLER, args, {
    cwd: ROOT,
    detached: true, // its own process group, so stop() reaches workerd too
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      VASCO_SKIP_BUILD: '1',
      WRANGLER_SEND_METRICS: 'false',
      // No attempt to download the Request.cf placeholder from the internet (3 s timeout).
      CLOUDFLARE_CF_FETCH_ENABLED: 'false',
      NO_COLOR: '1',
      FORCE_COLOR: '0',
    },
  });
  running.add(child);
  let output = '';
  const keep = (chunk) => {
    output += chunk;
    if (output.length > 200_000) output = output.slice(-100_000);
  };
  child.stdout.setEncoding('utf8').on('data', keep);
  child.stderr.setEncoding('utf8').on('data', keep);
  const exited = new Promise((resolveExit) => {
    child.on('exit', (code, signal) => {
      running.delete(child);
      resolveExit({ code, signal });
    });
  });

  const url = `http://127.0.0.1:${port}`;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    killGroup(child, 'SIGTERM');
    const done = await Promise.race([exited.then(() => true), sleep(5_000).then(() => false)]);
    if (!done) {
      killGroup(child, 'SIGKILL');
      await exited;
    }
    // workerd may outlive wrangler by a moment; make sure the group is gone.
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // no such group: all gone
    }
    if (!keptDir) await rm(persistDir, { recursive: true, force: true });
  };

  // Wait for /health, or for wrangler to die, or for the deadline.
  const deadline = Date.now() + timeoutMs;
  let exitInfo = null;
  exited.then((info) => {
    exitInfo = info;
  });
  let lastError = 'no answer yet';
  while (true) {
    if (exitInfo) {
      await stop();
      throw new Error(
        `wrangler dev exited (${JSON.stringify(exitInfo)}) before /health answered:\n${output}`,
      );
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`wrangler dev did not answer /health within ${timeoutMs} ms (${lastError}):\n${output}`);
    }
    try {
      const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2_000) });
      if (res.status === 200) {
        await res.arrayBuffer();
        break;
      }
      lastError = `status ${res.status}`;
    } catch (err) {
      lastError = err.cause?.code ?? err.message;
    }
    await sleep(100);
  }

  return {
    url,
    port,
    token,
    persistDir,
    /** fetch relative to the server's URL. */
    fetch: (path, init) => fetch(new URL(path, url), init),
    /** Headers with the write token (plus `extra`). */
    auth: (extra = {}) => ({ authorization: `Bearer ${token}`, ...extra }),
    /** wrangler's output so far (for failure messages). */
    logs: () => output,
    stop,
  };
}
