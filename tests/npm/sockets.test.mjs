// The npm package's sockets against a real local Worker (`wrangler dev`): leases held on a
// WebSocket by default, the dependency cache kept by the change feed, client.watch(), and a
// service killed without a chance to deregister (SIGKILL, SIGTERM, a crash) disappearing from a
// consumer's picks long before its lease would lapse. Timing is measured in bench/shutdown.mjs;
// here only "well before the lease ends" is asserted, by polling with a deadline.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { startWrangler } from '../support/wrangler.mjs';
import { loadVasco, startChild, unique, waitFor } from './helpers.mjs';

/** The killed services' lease: far longer than any deadline below. */
const TTL_S = 60;
/** How long a consumer may keep picking a killed service (the lease is 60 s). */
const GONE_WITHIN_MS = 5_000;

let server;
let vasco;
let consumer;
let keepAlive;

before(async () => {
  keepAlive = setInterval(() => {}, 1000);
  vasco = await loadVasco();
  server = await startWrangler();
  consumer = vasco.connect({ url: server.url, token: server.token });
});

after(async () => {
  await consumer?.close();
  await server?.stop();
  clearInterval(keepAlive);
});

const env = () => ({ VASCO_URL: server.url, VASCO_TOKEN: server.token });

/** Whether the consumer picks `url` for `name` now (false once it has no instance). */
async function picks(name, url) {
  try {
    return (await consumer.pick(name)).url === url;
  } catch (error) {
    if (error.code === 'no_url') return false;
    throw error;
  }
}

describe('a killed service leaves the consumer\'s picks at once', () => {
  // Three trials of each way to die, bounded.
  for (const how of ['SIGKILL', 'SIGTERM', 'crash']) {
    test(`${how}: 3 trials`, async () => {
      for (let trial = 0; trial < 3; trial += 1) {
        const name = unique(`dead-${how.toLowerCase()}`);
        const child = startChild('service.cjs', { ...env(), SVC_NAME: name, SVC_TTL: String(TTL_S) });
        const { registered: url, socket } = await child.message('registered');
        assert.equal(socket, true, 'the lease is held on a WebSocket');
        await waitFor(() => picks(name, url), { timeout: 10_000, message: `${name} picked` });

        child.kill(how === 'crash' ? 'SIGUSR2' : how);
        const exit = await child.exited;
        if (how === 'crash') assert.equal(exit.code, 1, 'died of the uncaught exception');
        else assert.equal(exit.signal, how);
        const killed = Date.now();
        await waitFor(async () => !(await picks(name, url)), {
          timeout: GONE_WITHIN_MS,
          interval: 10,
          message: `${name} no longer picked after ${how} (trial ${trial + 1})`,
        });
        assert.ok(Date.now() - killed < TTL_S * 1000);
      }
    });
  }
});

describe('change feed', () => {
  test('watch() reports additions and removals, and stops after unsubscribe', async () => {
    const name = unique('watched');
    const seen = [];
    const unsubscribe = consumer.watch(name, '^1', (instances) => seen.push(instances.map((i) => i.url)));
    // The first call comes once the feed's snapshot is in: no instances yet.
    await waitFor(() => seen.length >= 1, { message: 'the first watch call' });
    assert.deepEqual(seen[0], []);

    const writer = vasco.connect({ url: server.url, token: server.token });
    const a = await writer.register({ name, version: '1.2.0', url: '127.0.0.1:6301', ttl: TTL_S });
    await waitFor(() => seen.some((urls) => urls.includes('127.0.0.1:6301')), { message: 'the addition' });
    // Not matching ^1: no call for it.
    const b = await writer.register({ name, version: '2.0.0', url: '127.0.0.1:6302', ttl: TTL_S });
    const c = await writer.register({ name, version: '1.3.0', url: '127.0.0.1:6303', ttl: TTL_S });
    await waitFor(() => seen.at(-1).length === 2, { message: 'the second matching instance' });
    assert.deepEqual(seen.at(-1), ['127.0.0.1:6303', '127.0.0.1:6301'], 'newest version first');
    assert.ok(seen.every((urls) => !urls.includes('127.0.0.1:6302')));

    await a.deregister();
    await waitFor(() => seen.at(-1).length === 1, { message: 'the removal' });
    assert.deepEqual(seen.at(-1), ['127.0.0.1:6303']);

    unsubscribe();
    const calls = seen.length;
    await c.deregister();
    // The consumer's cache follows the feed (its picks see the removal) ...
    await waitFor(async () => {
      const list = await consumer.instances(name, '^1');
      return list.length === 0;
    }, { message: 'the cache saw the removal' });
    // ... but the unsubscribed listener was not called.
    assert.equal(seen.length, calls);
    await b.deregister();
    await writer.close();
  });

  test('a fed cache does not poll: no HTTP lookups long past cacheTtl, removals still seen', async () => {
    const name = unique('quiet');
    const writer = vasco.connect({ url: server.url, token: server.token });
    const a = await writer.register({ name, version: '1.0.0', url: '127.0.0.1:6801', ttl: TTL_S });
    const b = await writer.register({ name, version: '1.0.0', url: '127.0.0.1:6802', ttl: TTL_S });
    const reader = vasco.connect({ url: server.url, token: server.token, cacheTtl: 50 });
    const lookups = [];
    const realFetch = globalThis.fetch;
    globalThis.fetch = (url, init) => {
      lookups.push(`${init?.method ?? 'GET'} ${url}`);
      return realFetch(url, init);
    };
    try {
      // The first lookup is answered by the feed's snapshot, not over HTTP.
      assert.equal((await reader.instances(name)).length, 2);
      // Ten cache lifetimes of picks: a polling cache would refresh several times.
      const until = Date.now() + 10 * 50;
      while (Date.now() < until) {
        await reader.pick(name);
        await new Promise((resolve) => setImmediate(resolve));
      }
      await reader.findDependencies({ [name]: '^1' });
      await a.deregister();
      await waitFor(async () => (await reader.pick(name)).url === '127.0.0.1:6802' && (await reader.instances(name)).length === 1, {
        message: 'the removal, from the feed',
      });
      assert.deepEqual(lookups, [], 'no HTTP request from the reader');
    } finally {
      globalThis.fetch = realFetch;
    }
    await b.deregister();
    await reader.close();
    await writer.close();
  });

  test('watch() validates its listener', () => {
    assert.throws(() => consumer.watch('api', '^1'), { code: 'invalid_argument' });
    assert.throws(() => consumer.watch('Not A Name!', () => {}), (e) => /name/.test(e.code));
  });

  test('findDependencies follows the feed: a deregistered dependency is not returned', async () => {
    const name = unique('dep');
    const writer = vasco.connect({ url: server.url, token: server.token });
    const a = await writer.register({ name, version: '1.0.0', url: '127.0.0.1:6401', ttl: TTL_S });
    const b = await writer.register({ name, version: '1.0.0', url: '127.0.0.1:6402', ttl: TTL_S });
    await consumer.findDependencies({ [name]: '^1' });
    await a.deregister();
    // No cache lifetime to wait out: the removal arrives on the feed.
    await waitFor(async () => {
      for (let i = 0; i < 20; i += 1) {
        if ((await consumer.findDependencies({ [name]: '^1' }))[name] !== '127.0.0.1:6402') return false;
      }
      return true;
    }, { timeout: GONE_WITHIN_MS, message: 'only the remaining instance' });
    await b.deregister();
    await waitFor(
      () => consumer.findDependencies({ [name]: '^1' }).then(() => false, (error) => error.code === 'no_url'),
      { timeout: GONE_WITHIN_MS, message: 'no_url once both are gone' },
    );
    await writer.close();
  });
});

describe('lease transport', () => {
  test("lease: 'http' renews with HTTP PUTs (the fallback path)", async () => {
    const client = vasco.connect({ url: server.url, token: server.token, lease: 'http' });
    const name = unique('put');
    const registration = await client.register({ name, version: '1.0.0', url: '127.0.0.1:6501', ttl: 1 });
    assert.equal(registration.socket, false);
    let beats = 0;
    registration.on('heartbeat', () => {
      beats += 1;
    });
    await waitFor(() => beats >= 2, { message: 'two HTTP heartbeats' });
    await client.close();
  });

  test('a WebSocket lease renews, and deregister() removes the instance', async () => {
    const client = vasco.connect({ url: server.url, token: server.token });
    const name = unique('sock');
    const registration = await client.register({ name, version: '1.0.0', url: '127.0.0.1:6601', ttl: 1 });
    assert.equal(registration.socket, true);
    let beats = 0;
    registration.on('heartbeat', (instance) => {
      assert.equal(instance.url, '127.0.0.1:6601');
      beats += 1;
    });
    // A 1 s lease renewed over the socket outlives several lease periods.
    await waitFor(() => beats >= 4, { timeout: 10_000, message: 'four renewals' });
    const res = await server.fetch(`/v1/services/${name}?consistent`);
    assert.equal((await res.json()).instances.length, 1);
    await registration.deregister();
    const gone = await server.fetch(`/v1/services/${name}?consistent`);
    assert.equal((await gone.json()).instances.length, 0);
    await client.close();
  });

  test('a registry without WebSocket leases gets HTTP renewals', async () => {
    // A proxy that forwards plain HTTP to the Worker but refuses every upgrade with 404,
    // as an older registry (or a proxy without WebSocket support) would.
    const { createServer } = await import('node:http');
    const proxy = createServer(async (req, res) => {
      const chunks = [];
      for await (const chunk of req) chunks.push(chunk);
      const body = chunks.length ? Buffer.concat(chunks) : undefined;
      const headers = { ...req.headers };
      delete headers.host;
      const answer = await fetch(new URL(req.url, server.url), { method: req.method, headers, body });
      res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') || 'application/json' });
      res.end(Buffer.from(await answer.arrayBuffer()));
    });
    proxy.on('upgrade', (req, socket) => {
      socket.end('HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
    });
    await new Promise((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${proxy.address().port}`;
    try {
      const client = vasco.connect({ url, token: server.token });
      const name = unique('old');
      const registration = await client.register({ name, version: '1.0.0', url: '127.0.0.1:6701', ttl: 1 });
      assert.equal(registration.socket, false);
      let beats = 0;
      registration.on('heartbeat', () => {
        beats += 1;
      });
      await waitFor(() => beats >= 2, { message: 'HTTP heartbeats after the refused upgrade' });
      // Lookups work without a feed too (the cache's HTTP policy).
      assert.equal((await client.pick(name)).url, '127.0.0.1:6701');
      await registration.deregister();
      await client.close();
    } finally {
      proxy.closeAllConnections?.();
      await new Promise((resolve) => proxy.close(resolve));
    }
  });
});
