// Health status and graceful draining, end to end against a real local Worker (`wrangler dev`):
// a service registered with the npm package (a child process) and a consumer using the modern
// client with its change feed.
//
// * SIGTERM drains: the service sets itself to maintenance at once, so the consumer stops
//   picking it (polled against a deadline of 1 s from the signal), picks nothing of it during
//   the drain window while the instance is still registered (and still renewed, past its TTL),
//   and then the instance leaves the registry (`?all` no longer lists it).
// * A health check that starts failing takes the instance out of the consumer's picks
//   (critical, with the error as its reason), and one that passes again puts it back.
// * In-process: setStatus over a WebSocket lease and over HTTP PUT .../status, lookups' status
//   options, and drain().
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { startWrangler } from '../support/wrangler.mjs';
import { loadVasco, startChild, unique, waitFor } from './helpers.mjs';

/** The service's lease: shorter than its drain, so only renewals keep it through the drain. */
const TTL_S = 2;
/** The service's drain on SIGTERM. */
const DRAIN_MS = 4_000;
/** Where a change must reach the consumer's picks by (the target for a drain). */
const PICKS_STOP_WITHIN_MS = 1_000;

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

const env = (extra = {}) => ({ VASCO_URL: server.url, VASCO_TOKEN: server.token, ...extra });

/** The service's instances as the registry holds them, every status (`?all`), from its object. */
async function registered(name) {
  const res = await server.fetch(`/v1/services/${name}?all&consistent`);
  const text = await res.text();
  assert.equal(res.status, 200, text);
  return JSON.parse(text).instances;
}

/** The urls of `n` picks of `name`, with round robin and with sticky keys. */
async function picks(name, n = 20) {
  const urls = [];
  for (let i = 0; i < n; i += 1) {
    urls.push((await consumer.pick(name, { strategy: 'round-robin' })).url);
    urls.push((await consumer.pick(name, { strategy: 'maglev', key: `user-${i}` })).url);
  }
  return urls;
}

/** A second instance of `name`, registered by the test, so picks always have an answer. */
async function companion(name, port) {
  const writer = vasco.connect({ url: server.url, token: server.token, handleSignals: false });
  const registration = await writer.register({ name, version: '1.0.0', url: `127.0.0.1:${port}`, ttl: 30 });
  return { url: registration.url, close: () => writer.close() };
}

describe('SIGTERM drains before deregistering', () => {
  for (const api of ['original', 'modern']) {
    test(`${api} API: picks stop within 1 s, none during the drain, then the instance leaves`, async () => {
      const name = unique(`drain-${api}`);
      const other = await companion(name, 7101);
      const child = startChild('health.cjs', env({ SVC_NAME: name, SVC_TTL: String(TTL_S), SVC_API: api, VASCO_DRAIN_MS: String(DRAIN_MS) }));
      try {
        const { registered: url, socket } = await child.message('registered');
        assert.equal(socket, true, 'the lease is held on a WebSocket');
        // Both instances are picked before the signal.
        await waitFor(async () => (await picks(name, 4)).includes(url), { timeout: 10_000, message: `${url} picked` });

        child.kill('SIGTERM');
        const signalled = Date.now();
        await waitFor(async () => !(await picks(name, 4)).includes(url), {
          timeout: PICKS_STOP_WITHIN_MS,
          interval: 10,
          message: `${url} no longer picked within ${PICKS_STOP_WITHIN_MS} ms of SIGTERM`,
        });
        const stopped = Date.now() - signalled;

        // The drain window: still registered, in maintenance, and never picked.
        const during = await registered(name);
        const drained = during.find((i) => i.url === url);
        assert.ok(drained, 'still registered while draining');
        assert.equal(drained.status, 'maintenance');
        assert.equal(drained.reason, 'shutdown');
        for (let round = 0; round < 5; round += 1) {
          const urls = await picks(name);
          assert.ok(urls.length > 0 && urls.every((u) => u === other.url), `round ${round}: ${urls}`);
        }
        // Past its 2 s lease it is still there: the drain keeps renewing it.
        await waitFor(
          async () => {
            const listed = (await registered(name)).find((i) => i.url === url);
            assert.ok(listed, `left after ${Date.now() - signalled} ms, before the drain ended`);
            assert.equal(listed.status, 'maintenance');
            assert.ok((await picks(name, 2)).every((u) => u === other.url));
            return Date.now() - signalled > TTL_S * 1000 + 500;
          },
          { timeout: DRAIN_MS, interval: 100, message: 'the lease outliving its TTL during the drain' },
        );

        // Then it leaves the registry, and the process exits by the signal.
        await waitFor(async () => !(await registered(name)).some((i) => i.url === url), {
          timeout: DRAIN_MS + 5_000,
          message: `${url} gone from ?all after the drain`,
        });
        const exit = await child.exited;
        assert.equal(exit.signal, 'SIGTERM', child.stderr());
        assert.ok(child.messages.some((m) => m.draining === DRAIN_MS), JSON.stringify(child.messages));
        assert.ok(child.messages.some((m) => m.deregistered));
        assert.ok(stopped < PICKS_STOP_WITHIN_MS);
      } finally {
        child.kill('SIGKILL');
        await other.close();
      }
    });
  }

  test('VASCO_DRAIN_MS=0 deregisters at once, as before', async () => {
    const name = unique('nodrain');
    const child = startChild('health.cjs', env({ SVC_NAME: name, SVC_TTL: '60', VASCO_DRAIN_MS: '0' }));
    try {
      const { id } = await child.message('registered');
      assert.ok((await registered(name)).some((i) => i.id === id));
      child.kill('SIGTERM');
      const exit = await child.exited;
      assert.equal(exit.signal, 'SIGTERM');
      assert.ok(!child.messages.some((m) => 'draining' in m), 'no drain');
      assert.deepEqual(await registered(name), []);
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe('health checks', () => {
  for (const api of ['modern', 'original']) {
    test(`${api} API: a failing check takes the instance out of picks, a passing one puts it back`, async () => {
      const name = unique(`check-${api}`);
      const other = await companion(name, 7201);
      const child = startChild('health.cjs', env({ SVC_NAME: name, SVC_TTL: '3', SVC_API: api }));
      try {
        const { registered: url } = await child.message('registered');
        const port = url.split(':')[1];
        await waitFor(async () => (await picks(name, 4)).includes(url), { timeout: 10_000, message: `${url} picked` });

        await fetch(`http://127.0.0.1:${port}/health?fail=1`, { method: 'POST' }).then((r) => r.arrayBuffer());
        // The next renewal (every ttl/3) carries the failed check.
        await waitFor(async () => !(await picks(name, 4)).includes(url), { timeout: 10_000, message: `${url} out of picks` });
        const sick = (await registered(name)).find((i) => i.url === url);
        assert.equal(sick.status, 'critical');
        assert.equal(sick.reason, 'db down');
        assert.ok(!(await consumer.instances(name)).some((i) => i.url === url), 'not listed by default');
        assert.ok((await consumer.instances(name, { status: 'critical' })).some((i) => i.url === url));
        await child.message('status');

        await fetch(`http://127.0.0.1:${port}/health?fail=0`, { method: 'POST' }).then((r) => r.arrayBuffer());
        await waitFor(async () => (await picks(name, 4)).includes(url), { timeout: 10_000, message: `${url} back in picks` });
        assert.equal((await registered(name)).find((i) => i.url === url).status, 'passing');
      } finally {
        child.kill('SIGKILL');
        await other.close();
      }
    });
  }
});

describe('in-process', () => {
  for (const lease of ['websocket', 'http']) {
    test(`setStatus over ${lease === 'http' ? 'PUT .../status' : 'the lease socket'}, status options, drain()`, async () => {
      const name = unique(`set-${lease}`);
      const other = await companion(name, 7301);
      const client = vasco.connect({ url: server.url, token: server.token, lease, handleSignals: false });
      try {
        const registration = await client.register({ name, version: '1.0.0', url: '127.0.0.1:7302', ttl: 30 });
        assert.equal(registration.socket, lease === 'websocket');
        await waitFor(async () => (await picks(name, 4)).includes(registration.url), { message: 'picked' });

        const statuses = [];
        registration.on('status', (instance) => statuses.push(instance.status));
        const held = await registration.setStatus('maintenance', 'deploy', { by: 'ci' });
        assert.deepEqual([held.status, held.reason, held.by], ['maintenance', 'deploy', 'ci']);
        assert.equal(registration.status, 'maintenance');
        await waitFor(async () => !(await picks(name, 4)).includes(registration.url), {
          timeout: PICKS_STOP_WITHIN_MS,
          interval: 10,
          message: 'out of picks after maintenance',
        });
        // Lookups: passing and warning by default; status options ask for the others.
        const urls = (list) => list.map((i) => i.url).sort();
        assert.deepEqual(urls(await consumer.instances(name)), [other.url]);
        assert.deepEqual(urls(await consumer.instances(name, { all: true })), [other.url, registration.url].sort());
        assert.deepEqual(urls(await consumer.instances(name, { status: ['maintenance'] })), [registration.url]);
        assert.deepEqual(urls(await consumer.instances(name, '^1', { passing: true })), [other.url]);
        await assert.rejects(consumer.instances(name, { status: 'sick' }), { code: 'invalid_status' });
        await assert.rejects(registration.setStatus('sleeping'), { code: 'invalid_status' });

        // Warning: picked only when no passing instance is left.
        await registration.setStatus('warning', 'slow');
        await waitFor(async () => (await consumer.instances(name)).length === 2, { message: 'listed again' });
        assert.ok((await picks(name)).every((u) => u === other.url), 'the passing one is preferred');
        await other.close();
        await waitFor(async () => (await picks(name, 4)).every((u) => u === registration.url), {
          message: 'the warning one picked once it is the only one',
        });
        assert.deepEqual(statuses, ['maintenance', 'warning']);

        // drain(): maintenance, then deregistered after the timeout.
        const draining = registration.drain({ timeout: 300 });
        await waitFor(async () => (await registered(name)).some((i) => i.status === 'maintenance'), { message: 'maintenance' });
        await draining;
        assert.deepEqual(await registered(name), []);
        assert.equal(registration.active, false);
      } finally {
        await client.close();
        await other.close();
      }
    });
  }
});
