// Helpers shared by the Consul-client suites (tests/consul/*.test.mjs): a counting HTTP proxy
// that sits between a client and the Worker, child processes that print one JSON object per
// line, and polling against a deadline.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { request as httpRequest, createServer } from 'node:http';

/** Polls `check` (async, returns truthy when done) every `everyMs` until `deadlineMs` passes. */
export async function eventually(check, { deadlineMs, everyMs = 200, what = 'condition' }) {
  const end = Date.now() + deadlineMs;
  let last;
  while (Date.now() <= end) {
    last = await check();
    if (last) return last;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  assert.fail(`${what}: not met within ${deadlineMs} ms`);
}

/**
 * An HTTP proxy on 127.0.0.1 that forwards every request to `target` (a base URL such as
 * `http://127.0.0.1:8787`) unchanged and records it, so a test can count what a client sends.
 *
 * Each record: `{method, url, start, end, status}` (`end` and `status` are null while the request
 * is in flight; `url` is the path with its query string; times are Date.now() milliseconds).
 *
 * @returns {Promise<{url: string, host: string, port: number, requests: object[],
 *   inFlight: (pred?: (r: object) => boolean) => object[], close: () => Promise<void>}>}
 */
export async function startCountingProxy(target) {
  const upstream = new URL(target);
  const requests = [];
  const server = createServer((req, res) => {
    const record = { method: req.method, url: req.url, start: Date.now(), end: null, status: null };
    requests.push(record);
    const out = httpRequest(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: upstream.host },
      },
      (answer) => {
        record.status = answer.statusCode;
        res.writeHead(answer.statusCode, answer.headers);
        answer.pipe(res);
        answer.on('end', () => {
          record.end = Date.now();
        });
      },
    );
    out.on('error', (err) => {
      record.end = Date.now();
      record.status = record.status ?? `proxy error: ${err.message}`;
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`proxy error: ${err.message}`);
    });
    // A client that gives up (node-consul's timeout) closes its side: drop the upstream call too.
    res.on('close', () => {
      if (record.end === null) {
        record.end = Date.now();
        record.status = record.status ?? 'aborted by client';
        out.destroy();
      }
    });
    req.pipe(out);
  });
  const sockets = new Set();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    host: '127.0.0.1',
    port,
    requests,
    inFlight: (pred = () => true) => requests.filter((r) => r.end === null && pred(r)),
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * Starts `command args` with piped stdio and collects every stdout line that parses as JSON.
 * `lines` holds them in order, each with `_at` (Date.now() when read); `waitFor(pred)` resolves
 * with the first line (from index `from`, default 0) that matches, polling to a deadline.
 * `stop(signal)` sends the signal and waits for the exit; `kill()` ends it for good (idempotent).
 */
export function spawnJsonLines(command, args, { env, cwd } = {}) {
  const child = spawn(command, args, { cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
  const lines = [];
  let output = '';
  let buffered = '';
  child.stdout.setEncoding('utf8').on('data', (chunk) => {
    output += chunk;
    buffered += chunk;
    let nl;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      if (!line) continue;
      try {
        const parsed = JSON.parse(line);
        if (parsed && typeof parsed === 'object') lines.push({ ...parsed, _at: Date.now() });
      } catch {
        // not JSON: kept in `output` only
      }
    }
  });
  child.stderr.setEncoding('utf8').on('data', (chunk) => {
    output += chunk;
  });
  let exitInfo = null;
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      exitInfo = { code, signal };
      resolve(exitInfo);
    });
    child.on('error', (err) => {
      exitInfo = { code: null, signal: null, error: err.message };
      resolve(exitInfo);
    });
  });
  const alive = () => exitInfo === null;
  return {
    child,
    lines,
    output: () => output,
    exited,
    exitInfo: () => exitInfo,
    send: (text) => child.stdin.write(`${text}\n`),
    async waitFor(pred, { deadlineMs = 30_000, from = 0, what = 'line' } = {}) {
      const end = Date.now() + deadlineMs;
      while (true) {
        const found = lines.slice(from).find(pred);
        if (found) return found;
        if (!alive()) {
          assert.fail(`${what}: ${command} exited (${JSON.stringify(exitInfo)}) first; output:\n${output.slice(-5_000)}`);
        }
        if (Date.now() > end) {
          assert.fail(`${what}: not seen within ${deadlineMs} ms; output:\n${output.slice(-5_000)}`);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async stop(signal = 'SIGTERM', deadlineMs = 15_000) {
      if (alive()) child.kill(signal);
      let timer;
      const done = await Promise.race([
        exited,
        new Promise((r) => {
          timer = setTimeout(() => r(null), deadlineMs);
        }),
      ]);
      clearTimeout(timer);
      return done;
    },
    async kill() {
      if (alive()) {
        // A stopped process (SIGSTOP) must be continued for SIGKILL's exit to be reaped promptly.
        try {
          child.kill('SIGCONT');
        } catch {
          // gone
        }
        child.kill('SIGKILL');
      }
      await exited;
    },
  };
}

/** `GET path` on `baseUrl`; returns `{status, headers, body}` with the body parsed as JSON when it is. */
export async function getJson(baseUrl, path, headers = {}) {
  const res = await fetch(new URL(path, baseUrl), { headers });
  const text = await res.text();
  let body = text;
  try {
    body = JSON.parse(text);
  } catch {
    // left as text
  }
  return { status: res.status, headers: res.headers, body };
}

/** `PUT path` on `baseUrl` with an optional JSON body; returns `{status, headers, body}` (text). */
export async function put(baseUrl, path, { body, headers = {} } = {}) {
  const res = await fetch(new URL(path, baseUrl), {
    method: 'PUT',
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text };
}
