// Small helpers shared by the Worker suites (tests/worker/*.test.mjs).
import assert from 'node:assert/strict';

/** The KV operation count a response reports. */
export function kvOps(res) {
  const value = res.headers.get('x-vasco-kv-ops');
  assert.notEqual(value, null, `every response carries x-vasco-kv-ops (this one: ${res.status} ${res.statusText})`);
  return Number(value);
}

/** Sends `method path` with an optional JSON body; returns {res, status, body, ops}. */
export async function call(server, method, path, { body, headers = {}, raw } = {}) {
  const init = { method, headers: { ...headers } };
  if (raw !== undefined) {
    init.body = raw;
  } else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers['content-type'] = 'application/json';
  }
  const res = await server.fetch(path, init);
  const text = await res.text();
  let parsed = null;
  if (text.length > 0) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
  }
  if (res.headers.get('x-vasco-kv-ops') === null) {
    assert.fail(`${method} ${path} answered ${res.status} without x-vasco-kv-ops: ${text.slice(0, 300)}`);
  }
  return { res, status: res.status, body: parsed, ops: kvOps(res) };
}

/** Registers (or heartbeats) an instance with the server's write token; asserts 200. */
export async function register(server, name, version, id, body) {
  const out = await call(server, 'PUT', `/v1/services/${name}/${version}/instances/${id}`, {
    body,
    headers: server.auth(),
  });
  assert.equal(out.status, 200, `register ${name}@${version}/${id}: ${JSON.stringify(out.body)}`);
  return out;
}

/** The live instances of `name` (with an optional query string such as `?version=^2`). */
export async function lookup(server, name, query = '') {
  const out = await call(server, 'GET', `/v1/services/${name}${query}`);
  assert.equal(out.status, 200, JSON.stringify(out.body));
  return out;
}

/** The ids of a lookup answer, in order. */
export const ids = (out) => out.body.instances.map((i) => i.id);

/** Asserts the `{"error": {"code", "message"}}` shape and returns the code. */
export function errorCode(out) {
  assert.equal(typeof out.body, 'object', `error body is JSON: ${out.body}`);
  assert.deepEqual(Object.keys(out.body), ['error']);
  assert.equal(typeof out.body.error.code, 'string');
  assert.equal(typeof out.body.error.message, 'string');
  assert.ok(out.body.error.message.length > 0);
  return out.body.error.code;
}

/** Polls `check` (async, returns truthy when done) every `everyMs` until `deadlineMs` passes. */
export async function eventually(check, { deadlineMs, everyMs = 100, what = 'condition' }) {
  const end = Date.now() + deadlineMs;
  let last;
  while (Date.now() <= end) {
    last = await check();
    if (last) return last;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  assert.fail(`${what} not met within ${deadlineMs} ms`);
}
