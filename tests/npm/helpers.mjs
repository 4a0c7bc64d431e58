// Shared helpers of the npm package suites (tests/npm/*.test.mjs).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

import { ROOT } from '../support/wrangler.mjs';

export { ROOT };

/** The built package (scripts/build-wasm.sh). */
export const PKG = join(ROOT, 'crates', 'vasco-wasm', 'pkg');

/** Imports the built package (ESM entry), with advice when it is not built. */
export async function loadVasco() {
  const entry = join(PKG, 'index.mjs');
  if (!existsSync(entry)) {
    throw new Error(`the npm package is not built (${entry}); run: bash scripts/build-wasm.sh`);
  }
  return import(entry);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Polls `check` until it returns a truthy value (returned) or `timeout` ms pass (throws with
 * `message` and the last value or error). No fixed sleeps: the wait ends as soon as it can.
 */
export async function waitFor(check, { timeout = 5000, interval = 25, message = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await check();
      if (last) return last;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${message} (last: ${last instanceof Error ? last.stack : JSON.stringify(last)})`);
    }
    await sleep(interval);
  }
}

let counter = 0;
/** A service name unique within this process (suites share one registry per mode). */
export function unique(base) {
  counter += 1;
  return `${base}-${process.pid}-${counter}`;
}

/**
 * Runs a fixture script as a child process with `env`; resolves to a handle whose `lines`
 * yields parsed JSON lines of its stdout, plus `exited` (a promise of {code, signal}).
 */
export function startChild(script, env) {
  const child = spawn(process.execPath, [join(ROOT, 'tests', 'npm', 'fixtures', script)], {
    env: { ...process.env, VASCO_PKG: PKG, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk) => {
    stderr += chunk;
  });
  const messages = [];
  const waiters = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    let message;
    try {
      message = JSON.parse(line);
    } catch {
      message = { text: line };
    }
    messages.push(message);
    for (const waiter of [...waiters]) waiter();
  });
  const exited = once(child, 'exit').then(([code, signal]) => ({ code, signal }));
  return {
    child,
    messages,
    exited,
    stderr: () => stderr,
    /** Waits for a stdout JSON line with `key` (failing at once on an `error` line). */
    async message(key, timeout = 30_000) {
      return waitFor(
        () => {
          const failed = messages.find((m) => 'error' in m);
          if (failed && key !== 'error') throw new Error(`child failed: ${JSON.stringify(failed)}`);
          return messages.find((m) => key in m);
        },
        {
          timeout,
          message: `child message "${key}" (stdout: ${JSON.stringify(messages)}, stderr: ${stderr})`,
        },
      );
    },
    kill(signal) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
}
