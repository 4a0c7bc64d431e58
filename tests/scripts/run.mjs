// Runs the repository's scripts the way a user does, for tests/scripts/*.test.mjs.
import { spawn } from 'node:child_process';

import { ROOT } from '../support/wrangler.mjs';

/**
 * Starts `command` in the repository root in its own process group, collecting its output.
 * `env` is added to a minimal environment (PATH, HOME), not to this process's, so nothing of
 * the test runner's (a VASCO_TOKEN, say) leaks in.
 * @param {string} command
 * @param {string[]} args
 * @param {Record<string, string>} [env]
 */
export function start(command, args, env = {}) {
  const child = spawn(command, args, {
    cwd: ROOT,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', NO_COLOR: '1', ...env },
  });
  let output = '';
  const listeners = new Set();
  const keep = (chunk) => {
    output += chunk;
    for (const listener of listeners) listener();
  };
  child.stdout.setEncoding('utf8').on('data', keep);
  child.stderr.setEncoding('utf8').on('data', keep);
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return {
    child,
    exited,
    output: () => output,
    /** Resolves with the first match of `pattern` in the output; rejects if the process exits first. */
    waitFor(pattern) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const match = pattern.exec(output);
          if (match) {
            listeners.delete(check);
            resolve(match);
          }
        };
        listeners.add(check);
        check();
        exited.then(({ code, signal }) => {
          if (listeners.has(check)) {
            listeners.delete(check);
            reject(new Error(`exited (${code ?? signal}) before printing ${pattern}:\n${output}`));
          }
        });
      });
    },
    /** Ends the whole process group (wrangler and workerd too) and waits for the exit. */
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(-child.pid, 'SIGTERM');
        } catch {
          // already gone
        }
      }
      await exited;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // no group left
      }
    },
  };
}

/** Runs `command` to the end: `{code, output}`. */
export async function run(command, args, env = {}) {
  const started = start(command, args, env);
  const { code } = await started.exited;
  return { code, output: started.output() };
}
