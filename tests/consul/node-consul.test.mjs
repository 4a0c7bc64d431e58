// The npm `consul` client (2.0.1) against the Worker's Consul-compatible API, through programs
// written the way the tutorials write them (tests/consul/fixtures/): order-service registers with
// a TTL check and passes it on a timer (ConsulRegistry), api-gateway finds it with
// health.service({passing: true}), a 5 s cache and consul.watch (ConsulDiscovery). They run
// unchanged apart from CONSUL_HOST / CONSUL_PORT / CONSUL_TOKEN, a 2 s TTL and a 2 s watch wait.
//
// The gateway talks to the Worker through a counting proxy, so the test sees every request its
// watch makes: a watch with nothing changing must make at most one request per wait.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import Consul from 'consul';

import { ROOT, startWrangler } from '../support/wrangler.mjs';
import { eventually, getJson, spawnJsonLines, startCountingProxy } from './helpers.mjs';

const FIXTURES = join(ROOT, 'tests', 'consul', 'fixtures');
const CHECK_TTL = '2s';
const TTL_MS = 2_000;
const WATCH_WAIT = '2s';
const WAIT_MS = 2_000;
const SERVICE = 'order-service';
const HEALTH_PATH = `/v1/health/service/${SERVICE}`;

let server;
let proxy;
let gateway;
const services = new Map(); // instance number -> spawnJsonLines handle

/** The environment of a fixture program: where "Consul" is, and nothing from the caller's Consul setup. */
function clientEnv(port, extra = {}) {
  const env = { ...process.env };
  for (const key of Object.keys(env)) if (key.startsWith('CONSUL_')) delete env[key];
  return { ...env, CONSUL_HOST: '127.0.0.1', CONSUL_PORT: String(port), CONSUL_TOKEN: server.token, ...extra };
}

async function startOrderService(instance) {
  const proc = spawnJsonLines(process.execPath, [join(FIXTURES, 'order-service.cjs')], {
    cwd: ROOT,
    env: clientEnv(server.port, { INSTANCE: String(instance), CHECK_TTL }),
  });
  services.set(instance, proc);
  const registered = await proc.waitFor((l) => l.event === 'registered' || l.event === 'error', {
    deadlineMs: 20_000,
    what: `order-service-${instance} registers`,
  });
  assert.equal(registered.event, 'registered', `order-service-${instance}: ${JSON.stringify(registered)}\n${proc.output()}`);
  const listening = proc.lines.find((l) => l.event === 'listening');
  return { proc, port: listening.port };
}

/** The next watch `change` the gateway prints after line index `from` whose ids equal `ids`. */
function nextChange(ids, from, what, deadlineMs = 20_000) {
  return gateway.waitFor((l) => l.event === 'change' && JSON.stringify(l.ids) === JSON.stringify(ids), {
    from,
    deadlineMs,
    what: `${what} (watch change with ids ${JSON.stringify(ids)}; changes so far: ${JSON.stringify(
      gateway.lines.filter((l) => l.event === 'change').map((l) => l.ids),
    )})`,
  });
}

/** All entries of the service straight from the Worker (no passing filter). */
async function healthEntries() {
  const out = await getJson(server.url, HEALTH_PATH, { 'x-consul-token': server.token });
  assert.equal(out.status, 200, `GET ${HEALTH_PATH}: ${out.status} ${JSON.stringify(out.body)}`);
  assert.ok(Array.isArray(out.body), `GET ${HEALTH_PATH} answers an array: ${JSON.stringify(out.body)}`);
  return out.body;
}

const worst = (entry) => {
  const order = ['passing', 'warning', 'critical', 'maintenance'];
  return entry.Checks.map((c) => c.Status).reduce((a, b) => (order.indexOf(b) > order.indexOf(a) ? b : a), 'passing');
};

before(async () => {
  server = await startWrangler();
  proxy = await startCountingProxy(server.url);
  gateway = spawnJsonLines(process.execPath, [join(FIXTURES, 'api-gateway.cjs')], {
    cwd: ROOT,
    env: clientEnv(proxy.port, { WATCH_WAIT }),
  });
  await gateway.waitFor((l) => l.event === 'listening', { deadlineMs: 20_000, what: 'api-gateway listens' });
});

after(async () => {
  for (const proc of services.values()) await proc.kill();
  await gateway?.kill();
  await proxy?.close();
  await server?.stop();
});

describe('node-consul programs (ConsulRegistry, ConsulDiscovery)', () => {
  test('the watch starts with no instances', { timeout: 30_000 }, async () => {
    await nextChange([], 0, 'first watch answer');
    const first = proxy.requests.find((r) => r.url.startsWith(HEALTH_PATH));
    assert.match(first.url, /[?&]passing=true(&|$)/, `the watch asks for passing instances: ${first.url}`);
  });

  test('instances come: the watch fires with each registration', { timeout: 60_000 }, async () => {
    let from = gateway.lines.length;
    const one = await startOrderService(1);
    const change1 = await nextChange([`${SERVICE}-1`], from, 'order-service-1 appears');
    assert.deepEqual(change1.instances, [
      {
        id: `${SERVICE}-1`,
        address: '127.0.0.1',
        port: one.port,
        tags: ['orders', 'v1'],
        meta: { version: '1.0.0', instance: '1' },
      },
    ]);

    from = gateway.lines.length;
    await startOrderService(2);
    await nextChange([`${SERVICE}-1`, `${SERVICE}-2`], from, 'order-service-2 appears');

    // The gateway's cached lookup (health.service with passing) sees both.
    const gw = gateway.lines.find((l) => l.event === 'listening');
    const listed = await getJson(`http://127.0.0.1:${gw.port}`, '/instances');
    assert.equal(listed.status, 200, JSON.stringify(listed.body));
    assert.deepEqual(listed.body.map((i) => i.id).sort(), [`${SERVICE}-1`, `${SERVICE}-2`]);

    // Both are passing in the Worker's own answer, each with its TTL check named service:<id>.
    const entries = await healthEntries();
    for (const entry of entries) {
      assert.equal(worst(entry), 'passing', JSON.stringify(entry));
      assert.ok(
        entry.Checks.some((c) => c.CheckID === `service:${entry.Service.ID}` && c.ServiceID === entry.Service.ID),
        `a check service:${entry.Service.ID}: ${JSON.stringify(entry.Checks)}`,
      );
    }
  });

  test('an instance whose program stops passing goes critical, then passes again', { timeout: 60_000 }, async () => {
    const two = services.get(2);
    let from = gateway.lines.length;
    two.child.kill('SIGSTOP'); // frozen: its timer no longer marks the TTL check as passing
    try {
      await nextChange([`${SERVICE}-1`], from, 'order-service-2 leaves the passing list once its TTL lapses', 10 * TTL_MS + 10_000);
      // Still registered, now critical (it is deregistered only after DeregisterCriticalServiceAfter, 1m).
      await eventually(
        async () => {
          const entry = (await healthEntries()).find((e) => e.Service.ID === `${SERVICE}-2`);
          return entry && worst(entry) === 'critical';
        },
        { deadlineMs: 10_000, what: 'order-service-2 is listed as critical' },
      );
    } finally {
      from = gateway.lines.length;
      two.child.kill('SIGCONT');
    }
    await nextChange([`${SERVICE}-1`, `${SERVICE}-2`], from, 'order-service-2 passes again after SIGCONT');
  });

  test('with nothing changing, the watch makes at most one request per wait', { timeout: 60_000 }, async (t) => {
    // Both programs keep passing their TTL checks (every second) during the window: a heartbeat
    // that changes nothing a client sees must not wake the watch.
    const changesBefore = gateway.lines.filter((l) => l.event === 'change').length;
    const windowMs = 4 * WAIT_MS;
    const t0 = Date.now();
    // A measurement window, not a synchronisation: the assertion is about what happens during it.
    await new Promise((r) => setTimeout(r, windowMs));
    const t1 = Date.now();
    const blocking = proxy.requests.filter(
      (r) => r.url.startsWith(HEALTH_PATH) && /[?&]index=[1-9]/.test(r.url) && r.start >= t0 && r.start <= t1,
    );
    const changes = gateway.lines.filter((l) => l.event === 'change').slice(changesBefore);
    const detail = JSON.stringify(
      blocking
        .slice(0, 20)
        .map((r) => ({ url: r.url, status: r.status, heldMs: r.end === null ? 'in flight' : r.end - r.start })),
      null,
      1,
    ) + (blocking.length > 20 ? ` (first 20 of ${blocking.length})` : '');
    t.diagnostic(`${blocking.length} blocking requests in ${t1 - t0} ms, held ${blocking.map((r) => (r.end ?? t1) - r.start).join(', ')} ms`);
    assert.ok(blocking.length >= 1, `the watch keeps asking: ${detail}`);
    assert.ok(
      blocking.length <= Math.floor(windowMs / WAIT_MS) + 1,
      `${blocking.length} blocking requests in ${t1 - t0} ms with wait ${WATCH_WAIT} (at most ${
        Math.floor(windowMs / WAIT_MS) + 1
      }): the watch spins; requests: ${detail}`,
    );
    assert.equal(changes.length, 0, `no watch change while nothing changes; got ${JSON.stringify(changes.map((c) => c.ids))}; requests: ${detail}`);
  });

  test('an instance leaves when its program deregisters on SIGTERM', { timeout: 60_000 }, async () => {
    let from = gateway.lines.length;
    const two = services.get(2);
    const exit2 = await two.stop('SIGTERM');
    assert.deepEqual(exit2, { code: 0, signal: null }, `order-service-2 exits cleanly:\n${two.output()}`);
    assert.ok(two.lines.some((l) => l.event === 'deregistered'), two.output());
    await nextChange([`${SERVICE}-1`], from, 'order-service-2 leaves');
    assert.deepEqual((await healthEntries()).map((e) => e.Service.ID), [`${SERVICE}-1`], 'gone, not critical');
    const catalog = await getJson(server.url, `/v1/catalog/service/${SERVICE}`, { 'x-consul-token': server.token });
    assert.equal(catalog.status, 200, JSON.stringify(catalog.body));
    assert.deepEqual(catalog.body.map((e) => e.ServiceID), [`${SERVICE}-1`]);

    from = gateway.lines.length;
    const one = services.get(1);
    const exit1 = await one.stop('SIGTERM');
    assert.deepEqual(exit1, { code: 0, signal: null }, `order-service-1 exits cleanly:\n${one.output()}`);
    await nextChange([], from, 'order-service-1 leaves');
    assert.deepEqual(await healthEntries(), []);
  });

  test('the watch never reported an error', () => {
    const errors = gateway.lines.filter((l) => l.event === 'error');
    assert.deepEqual(errors, [], `watch errors:\n${gateway.output()}`);
    const failed = proxy.requests.filter((r) => r.end !== null && r.status !== 200);
    assert.deepEqual(failed, [], 'every request of the gateway answered 200');
  });

  test('a wrong token is refused with 403 and stores nothing', { timeout: 30_000 }, async () => {
    const intruder = new Consul({ host: '127.0.0.1', port: server.port, secure: false, defaults: { token: 'wrong-token' } });
    try {
      await assert.rejects(
        intruder.agent.service.register({ name: SERVICE, id: `${SERVICE}-intruder`, address: '127.0.0.1', port: 1, check: { ttl: '10s' } }),
        (err) => {
          assert.equal(err.response?.statusCode, 403, `status of a register with a wrong token: ${err.message}`);
          return true;
        },
      );
      await assert.rejects(intruder.agent.check.pass(`service:${SERVICE}-1`), (err) => {
        assert.equal(err.response?.statusCode, 403, `status of a check pass with a wrong token: ${err.message}`);
        return true;
      });
    } finally {
      intruder.destroy();
    }
    assert.deepEqual(await healthEntries(), []);
  });
});
