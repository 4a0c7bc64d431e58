// What a new user meets when the registry refuses or is not a registry at all, against stub
// servers in this process (no wrangler needed): each error says where, why and what to set,
// and nothing is retried forever in silence.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { after, before, test } from 'node:test';

import { loadVasco, waitFor } from './helpers.mjs';

let vasco;
const servers = [];

before(async () => {
  vasco = await loadVasco();
});

after(async () => {
  for (const server of servers) server.close();
});

/**
 * An HTTP registry stub: `answer(req, count, now)` gives [status, body] for each request;
 * `clock()` is the registry's clock (sent as x-vasco-now), ours unless given.
 */
async function stub(answer, clock = Date.now) {
  const requests = [];
  const server = createServer((req, res) => {
    requests.push({ method: req.method, url: req.url, authorization: req.headers.authorization });
    const now = clock();
    const [status, body] = answer(req, requests.length, now);
    res.writeHead(status, { 'content-type': 'application/json', 'x-vasco-now': String(now) });
    res.end(JSON.stringify(body));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  servers.push(server);
  return { url: `http://127.0.0.1:${server.address().port}`, requests };
}

const unauthorized = {
  error: { code: 'unauthorized', message: 'this route needs the write token: send `Authorization: Bearer <token>`' },
};

function instance(name, url, ttlMs = 10_000) {
  const now = Date.now();
  return { service: name, version: '1.0.0', id: 'a', url, tags: [], meta: {}, weight: 1, zone: null, registered_at: now, expires_at: now + ttlMs, ttl_ms: ttlMs };
}

test('a missing token: the error says to set VASCO_TOKEN, and the registration is not retried', async () => {
  const registry = await stub(() => [401, unauthorized]);
  const client = vasco.connect({ url: registry.url, handleSignals: false, lease: 'http' });
  await assert.rejects(client.register({ name: 'svc', version: '1.0.0', url: '127.0.0.1:7501' }), (err) => {
    assert.equal(err.code, 'unauthorized');
    assert.equal(err.status, 401);
    assert.match(err.message, /PUT http:\/\/127\.0\.0\.1:\d+\/v1\/services\/svc\/1\.0\.0\/instances\//, 'names the request');
    assert.match(err.message, /no token was sent: set VASCO_TOKEN/);
    return true;
  });
  assert.deepEqual(client.registrations, [], 'nothing left running');

  // A wrong token says so too.
  const wrong = vasco.connect({ url: registry.url, token: 'nope', handleSignals: false, lease: 'http' });
  await assert.rejects(wrong.register({ name: 'svc', version: '1.0.0', url: '127.0.0.1:7502' }), {
    message: /refused the token sent: set VASCO_TOKEN/,
  });
  assert.equal(registry.requests.at(-1).authorization, 'Bearer nope');

  // The original API: done(err) gets the same, and its registration stops (no silent retries).
  process.env.VASCO_URL = registry.url;
  delete process.env.VASCO_TOKEN;
  const { err, registration } = await new Promise((resolve) => {
    const r = vasco.register('127.0.0.1:7503', { name: 'legacy', version: '1.0.0' }, (e) => resolve({ err: e, registration: r }));
  });
  assert.equal(err.code, 'unauthorized');
  assert.match(err.message, /set VASCO_TOKEN/);
  assert.equal(registration.active, false, 'not retried forever');
  const asked = registry.requests.length;
  await vasco.deregister();
  assert.ok(registry.requests.length <= asked + 1);
});

test('a refused heartbeat is never silent: an error event, or else a process warning', async () => {
  // Registers fine, then the token is revoked.
  const registry = await stub((req, n) => (n === 1 ? [200, { instance: instance('beat', '127.0.0.1:7511', 1000) }] : [401, unauthorized]));
  const client = vasco.connect({ url: registry.url, token: 't', handleSignals: false, lease: 'http' });
  const keepAlive = setInterval(() => {}, 1000);
  try {
    const warning = once(process, 'warning', { signal: AbortSignal.timeout(10_000) });
    const registration = await client.register({ name: 'beat', version: '1.0.0', url: '127.0.0.1:7511', ttl: 1 });
    const [w] = await warning;
    assert.equal(w.code, 'VASCO_UNAUTHORIZED');
    assert.match(w.message, /beat@1\.0\.0: .*set VASCO_TOKEN/);
    // With a listener, the listener gets each failure instead.
    const event = once(registration, 'error', { signal: AbortSignal.timeout(10_000) });
    const [error] = await event;
    assert.equal(error.status, 401);
    assert.equal(registration.active, true, 'a revoked token may come back: still trying');
    await client.close({ deregister: false });
  } finally {
    clearInterval(keepAlive);
  }
});

test("the registry's 503 not_configured reaches Node with its status and code", async () => {
  const registry = await stub(() => [
    503,
    { error: { code: 'not_configured', message: 'writes are disabled: no VASCO_TOKEN is configured. Set it with `wrangler secret put VASCO_TOKEN`' } },
  ]);
  const client = vasco.connect({ url: registry.url, token: 't', handleSignals: false, lease: 'http' });
  await assert.rejects(client.findDependencies({ api: '1' }), (err) => {
    assert.equal(err.code, 'unavailable');
    assert.equal(err.status, 503);
    assert.equal(err.registryCode, 'not_configured');
    assert.match(err.message, /POST http:\/\/127\.0\.0\.1:\d+\/v1\/resolve: 503 not_configured: writes are disabled/);
    return true;
  });
});

test('a server that does not speak HTTP (Redis on its port) is named as such', async () => {
  // Answers like Redis does to an HTTP request.
  const redis = createTcpServer((socket) => {
    socket.once('data', () => socket.end('-ERR unknown command \'GET\'\r\n'));
  });
  redis.listen(0, '127.0.0.1');
  await once(redis, 'listening');
  servers.push(redis);
  const url = `http://127.0.0.1:${redis.address().port}`;
  const client = vasco.connect({ url, handleSignals: false });
  await assert.rejects(client.instances('api'), (err) => {
    assert.equal(err.code, 'unavailable');
    assert.match(err.message, new RegExp(`GET ${url}/v1/services/api: HPE_\\w+: the server at 127\\.0\\.0\\.1:\\d+ does not answer HTTP \\(a Redis server\\?`));
    return true;
  });
});

test('Selector memoizes picks by key and agrees with the core', async () => {
  const ids = Array.from({ length: 20 }, (_, i) => `10.0.0.${i}:80`);
  for (const strategy of ['maglev', 'ring', 'consistent-hash']) {
    const selector = new vasco.Selector(strategy, ids, { seed: 1 });
    const keys = Array.from({ length: 10_000 }, (_, i) => `user-${i % 5000}`);
    const expected = selector.pickKeys(keys);
    keys.forEach((key, i) => assert.equal(selector.pick(key), expected[i], `${strategy} ${key}`));
    selector.free();
  }
  // Strategies that do not pick by key are not memoized.
  const rr = new vasco.Selector('round-robin', ['a', 'b'], { seed: 1 });
  assert.notEqual(rr.pick('k'), rr.pick('k'));
  rr.free();
});

test('a stub lease of 300 ms is not served after it ends, judged on the registry clock', async () => {
  // The registry's clock runs an hour ahead of ours; its instance's lease ends 300 ms after it
  // answered. Our clock alone would keep serving it for an hour.
  const skew = 3_600_000;
  let alive = true;
  const registry = await stub(
    (req, n, now) => [200, { service: 'skewed', instances: alive ? [{ ...instance('skewed', '127.0.0.1:7521'), registered_at: now, expires_at: now + 300 }] : [] }],
    () => Date.now() + skew,
  );
  const client = vasco.connect({ url: registry.url, handleSignals: false, lease: 'http' });
  const first = await client.instances('skewed');
  assert.equal(first.length, 1);
  alive = false; // the process behind it is gone; its lease is not renewed
  const lapsed = first[0].expires_at - skew; // on our clock
  // (waitFor retries on a throw, so violations are collected and asserted after it.)
  const late = [];
  await waitFor(
    async () => {
      const asked = Date.now();
      const list = await client.instances('skewed');
      if (list.length && asked >= lapsed) late.push(asked - lapsed);
      return list.length === 0;
    },
    { timeout: 8000, message: 'the lapsed instance to go' },
  );
  assert.deepEqual(late, [], 'ms after the lease ended that it was still served');
});
