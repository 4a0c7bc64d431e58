// Leases in Durable Objects, against a real `wrangler dev --local`: the change index, what KV
// costs, the alarm reaping lapsed leases with no request in between, blocking queries, restarts
// on the same state, concurrency, WebSocket leases and change feeds (clients: Node's fetch and
// the `ws` package).
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import WebSocket from 'ws';

import { startWrangler } from '../support/wrangler.mjs';
import { call, eventually, ids, register } from './helpers.mjs';

let server;
before(async () => {
  server = await startWrangler({ cacheMs: 0 });
});
after(async () => {
  if (process.env.VASCO_TEST_LOGS) console.log(server?.logs());
  await server?.stop();
});

const index = (out) => Number(out.res.headers.get('x-vasco-index'));
const now = (out) => Number(out.res.headers.get('x-vasco-now'));

/** A WebSocket to `path` whose messages queue up for `next()`. */
async function socket(target, path, headers = {}) {
  const ws = new WebSocket(new URL(path, target.url.replace('http', 'ws')), { headers });
  const queue = [];
  const waiting = [];
  ws.on('message', (data) => {
    const text = data.toString();
    let message = text; // `pong` is plain text
    try {
      message = JSON.parse(text);
    } catch {}
    const waiter = waiting.shift();
    if (waiter) waiter(message);
    else queue.push(message);
  });
  const closed = new Promise((resolve) => ws.on('close', (code) => resolve(code)));
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade answered ${res.statusCode}`)));
  });
  return {
    ws,
    closed,
    send: (message) => ws.send(typeof message === 'string' ? message : JSON.stringify(message)),
    next: (ms = 5_000) =>
      queue.length > 0
        ? Promise.resolve(queue.shift())
        : new Promise((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`no message within ${ms} ms`)), ms);
            waiting.push((m) => {
              clearTimeout(timer);
              resolve(m);
            });
          }),
  };
}

describe('the change index and what a write costs', () => {
  test('a new instance is one snapshot write; a renewal is none and keeps the index', async () => {
    const first = await register(server, 'idx', '1.0.0', 'a', { url: 'h:1', ttl: 30 });
    assert.equal(first.ops, 1, 'one snapshot write');
    assert.equal(first.res.headers.get('x-vasco-outcome'), 'added');
    const start = index(first);
    assert.ok(start >= 2);
    for (let beat = 0; beat < 5; beat++) {
      const renewed = await register(server, 'idx', '1.0.0', 'a', { url: 'h:1', ttl: 30 });
      assert.equal(renewed.ops, 0, 'a renewal touches no KV');
      assert.equal(renewed.res.headers.get('x-vasco-outcome'), 'renewed');
      assert.equal(index(renewed), start);
      assert.equal(renewed.body.registered_at, first.body.registered_at, 'registered_at survives renewals');
    }
    const changed = await register(server, 'idx', '1.0.0', 'a', { url: 'h:2', ttl: 30 });
    assert.equal(changed.res.headers.get('x-vasco-outcome'), 'updated');
    assert.equal(index(changed), start + 1);
    const read = await call(server, 'GET', '/v1/services/idx?consistent');
    assert.equal(read.ops, 0);
    assert.equal(read.res.headers.get('x-vasco-source'), 'object');
    assert.equal(index(read), start + 1);
    const snapshot = await call(server, 'GET', '/v1/services/idx');
    assert.equal(snapshot.ops, 1, 'a default read is one KV get');
    assert.equal(snapshot.res.headers.get('x-vasco-source'), 'snapshot');
  });
});

describe('the alarm and blocking queries', () => {
  test('a 3 s lease with no beats wakes a blocking query within 1 s of expires_at', async () => {
    const put = await register(server, 'lapse', '1.0.0', 'a', { url: 'h:1', ttl: 3 });
    const expiresAt = put.body.expires_at;
    const held = await call(server, 'GET', `/v1/services/lapse?index=${index(put)}&wait=20s`);
    assert.equal(held.status, 200);
    assert.deepEqual(ids(held), [], 'woken by the lapse');
    assert.ok(index(held) > index(put));
    const late = now(held) - expiresAt;
    assert.ok(late >= 0 && late < 1_000, `answered ${late} ms after expires_at`);
    const consistent = await call(server, 'GET', '/v1/services/lapse?consistent');
    assert.deepEqual(ids(consistent), []);
    // The object rewrote the snapshot itself: default reads drop it too.
    const snapshot = await call(server, 'GET', '/v1/services/lapse');
    assert.deepEqual(ids(snapshot), []);
  });

  test('a blocking query with nothing changing holds for its wait and answers the same index', async () => {
    const put = await register(server, 'still', '1.0.0', 'a', { url: 'h:1', ttl: 60 });
    const asked = Date.now();
    const held = await call(server, 'GET', `/v1/services/still?index=${index(put)}&wait=2s`);
    assert.equal(index(held), index(put));
    assert.ok(Date.now() - asked >= 1_900, `held ${Date.now() - asked} ms of 2000`);
    assert.deepEqual(ids(held), ['a']);
    // A stale or zero index answers at once.
    const fast = await call(server, 'GET', `/v1/services/still?index=0&wait=30s`);
    assert.deepEqual(ids(fast), ['a']);
  });

  test('a change wakes a held query', async () => {
    const put = await register(server, 'wake', '1.0.0', 'a', { url: 'h:1', ttl: 60 });
    const held = call(server, 'GET', `/v1/services/wake?index=${index(put)}&wait=30s`);
    await new Promise((r) => setTimeout(r, 300));
    const second = await register(server, 'wake', '1.0.0', 'b', { url: 'h:2', ttl: 60 });
    const answer = await held;
    assert.equal(index(answer), index(second));
    assert.deepEqual(ids(answer), ['a', 'b']);
  });
});

describe('concurrency', () => {
  test('concurrent registrations, renewals and deregistrations of one service lose nothing', async () => {
    const n = 40;
    const put = (i, url = `h:${i + 1}`) =>
      call(server, 'PUT', `/v1/services/busy/1.0.0/instances/i${i}`, {
        body: { url, ttl: 60 },
        headers: server.auth(),
      });
    const results = await Promise.all(Array.from({ length: n }, (_, i) => put(i)));
    assert.ok(results.every((r) => r.status === 200));
    const mixed = await Promise.all([
      ...Array.from({ length: n / 2 }, (_, i) => put(i)), // renewals
      ...Array.from({ length: n / 2 }, (_, i) =>
        call(server, 'DELETE', `/v1/services/busy/1.0.0/instances/i${n / 2 + i}`, { headers: server.auth() }),
      ),
      ...Array.from({ length: 10 }, (_, i) => put(n + i)), // new ones
    ]);
    assert.ok(mixed.every((r) => r.status === 200 || r.status === 204), JSON.stringify(mixed.map((r) => r.status)));
    const read = await call(server, 'GET', '/v1/services/busy?consistent');
    const expected = [...Array.from({ length: n / 2 }, (_, i) => `i${i}`), ...Array.from({ length: 10 }, (_, i) => `i${n + i}`)];
    assert.deepEqual(ids(read).sort(), expected.sort());
    // Every change moved the index once: 40 + 20 + 10 changes from index 1.
    assert.equal(index(read), 1 + n + n / 2 + 10);
    await eventually(async () => ids(await call(server, 'GET', '/v1/services/busy')).length === expected.length, {
      deadlineMs: 3_000,
      what: 'the coalesced snapshot catches up',
    });
  });
});

describe('WebSocket leases', () => {
  test('register and renew over the socket; closing it deregisters at once', async () => {
    const lease = await socket(server, '/v1/services/wsl/1.0.0/instances/a/lease', server.auth());
    lease.send({ type: 'register', url: 'h:1', ttl: 10 });
    const registered = await lease.next();
    assert.equal(registered.type, 'registered', JSON.stringify(registered));
    assert.equal(registered.instance.url, 'h:1');
    lease.send({ type: 'renew' });
    const renewed = await lease.next();
    assert.equal(renewed.type, 'renewed');
    assert.equal(renewed.index, registered.index, 'a renewal is not a change');
    lease.send('ping');
    assert.equal(await lease.next(), 'pong');
    lease.send({ type: 'nonsense' });
    assert.equal((await lease.next()).error.code, 'invalid_type');
    assert.deepEqual(ids(await call(server, 'GET', '/v1/services/wsl?consistent')), ['a']);
    const closedAt = Date.now();
    lease.ws.terminate(); // an abrupt drop, as when the process is killed
    await eventually(async () => ids(await call(server, 'GET', '/v1/services/wsl?consistent')).length === 0, {
      deadlineMs: 2_000,
      everyMs: 20,
      what: 'the closed socket deregistered the instance',
    });
    assert.ok(Date.now() - closedAt < 2_000);
  });

  test('a lease socket needs the write token', async () => {
    await assert.rejects(socket(server, '/v1/services/wsl/1.0.0/instances/b/lease'), /401/);
  });

  test('a lapsed socket lease is closed by the object', async () => {
    const lease = await socket(server, '/v1/services/wsx/1.0.0/instances/a/lease', server.auth());
    lease.send({ type: 'register', url: 'h:1', ttl: 1 });
    assert.equal((await lease.next()).type, 'registered');
    // No renewals: the TTL ends the lease even though the socket is open.
    const message = await lease.next(5_000);
    assert.equal(message.type, 'closed');
    assert.equal(await lease.closed, 4001);
  });
});

describe('change feeds', () => {
  test('a service feed sends a snapshot, then every change with its index', async () => {
    const feed = await socket(server, '/v1/services/feed/watch');
    const first = await feed.next();
    assert.equal(first.type, 'snapshot');
    assert.deepEqual(first.instances, []);
    const put = await register(server, 'feed', '1.0.0', 'a', { url: 'h:1', ttl: 60 });
    const added = await feed.next();
    assert.equal(added.type, 'change');
    assert.equal(added.index, index(put));
    assert.deepEqual(added.added.map((i) => i.id), ['a']);
    await register(server, 'feed', '1.0.0', 'a', { url: 'h:1', ttl: 60 }); // renewal: no event
    await call(server, 'DELETE', '/v1/services/feed/1.0.0/instances/a', { headers: server.auth() });
    const removed = await feed.next();
    assert.deepEqual(removed.removed, [{ service: 'feed', version: '1.0.0', id: 'a' }]);
    assert.equal(removed.index, index(put) + 1);
    feed.ws.close();
  });

  test('the registry-wide feed sees every service', async () => {
    const feed = await socket(server, '/v1/watch');
    const first = await feed.next();
    assert.equal(first.type, 'catalog');
    await register(server, 'wide-a', '1.0.0', 'x', { url: 'h:1', ttl: 60 });
    await register(server, 'wide-b', '1.0.0', 'y', { url: 'h:2', ttl: 60 });
    const seen = [(await feed.next()).service, (await feed.next()).service];
    assert.deepEqual(seen.sort(), ['wide-a', 'wide-b']);
    feed.ws.close();
  });

  test('a feed route without an upgrade is 426', async () => {
    const out = await call(server, 'GET', '/v1/services/feed/watch');
    assert.equal(out.status, 426);
  });
});

describe('restarts', () => {
  test('state, the index and pending alarms survive a restart on the same persist directory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vasco-restart-'));
    try {
      let first = await startWrangler({ cacheMs: 0, persistDir: dir });
      const token = first.token;
      await register(first, 'keep', '1.0.0', 'long', { url: 'h:1', ttl: 600 });
      const short = await register(first, 'keep', '1.0.0', 'short', { url: 'h:2', ttl: 4 });
      const before = await call(first, 'GET', '/v1/services/keep?consistent');
      assert.deepEqual(ids(before), ['long', 'short']);
      await first.stop();

      const second = await startWrangler({ cacheMs: 0, persistDir: dir, token });
      try {
        // No request reaches the object: only its own alarm can drop `short` from the snapshot.
        await eventually(
          async () => {
            const snap = await call(second, 'GET', '/v1/services/keep');
            return snap.status === 200 && ids(snap).length === 1 && ids(snap)[0] === 'long';
          },
          { deadlineMs: 15_000, everyMs: 200, what: 'the alarm set before the restart reaped the short lease' },
        );
        const after = await call(second, 'GET', '/v1/services/keep?consistent');
        assert.deepEqual(ids(after), ['long']);
        assert.equal(index(after), index(short) + 1, 'the index went on from where it was');
        assert.ok(now(after) >= short.body.expires_at);
      } finally {
        await second.stop();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
