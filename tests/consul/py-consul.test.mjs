// py-consul (1.8.0, installed into .venv by scripts/setup.sh from tests/requirements.txt) against
// the Worker's Consul-compatible API: tests/consul/fixtures/py_client.py registers with a TTL
// check, passes it, reads health.service (plain, passing=True, blocking with index and wait),
// catalog.services and catalog.service, re-registers (the status stays), filters by tags, and
// deregisters; it prints one JSON line per step and this test asserts on them. It talks through a
// counting proxy, so the test can register a second instance exactly while py-consul's blocking
// call is held.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { ROOT, startWrangler } from '../support/wrangler.mjs';
import { eventually, put, spawnJsonLines, startCountingProxy } from './helpers.mjs';

const PYTHON = join(ROOT, '.venv', 'bin', 'python');
const SCRIPT = join(ROOT, 'tests', 'consul', 'fixtures', 'py_client.py');

let server;
let proxy;
let py;

before(async () => {
  server = await startWrangler();
  proxy = await startCountingProxy(server.url);
});

after(async () => {
  await py?.kill();
  await proxy?.close();
  await server?.stop();
});

test('py-consul registers, passes, reads, blocks and deregisters', { timeout: 120_000 }, async () => {
  assert.ok(existsSync(PYTHON), `${PYTHON} is missing; run: bash scripts/setup.sh`);
  const env = { ...process.env };
  // CONSUL_HTTP_TOKEN overrides py-consul's token argument, CONSUL_HTTP_ADDR/SSL its address.
  for (const key of Object.keys(env)) if (key.startsWith('CONSUL_')) delete env[key];
  py = spawnJsonLines(PYTHON, [SCRIPT], {
    cwd: ROOT,
    env: { ...env, CONSUL_TEST_HOST: '127.0.0.1', CONSUL_TEST_PORT: String(proxy.port), CONSUL_TEST_TOKEN: server.token },
  });
  const step = async (name, deadlineMs = 30_000) => {
    const line = await py.waitFor((l) => l.step === name || l.step === 'exception', { deadlineMs, what: `py-consul step ${name}` });
    assert.notEqual(line.step, 'exception', `py_client.py raised before ${name}: ${JSON.stringify(line)}\n${py.output().slice(-3_000)}`);
    return line;
  };

  const bad = await step('bad_token');
  assert.equal(bad.raised, 'ACLPermissionDenied', `a wrong token is a 403: ${JSON.stringify(bad)}`);

  assert.equal((await step('register')).result, true, 'agent.service.register returns True (HTTP 200)');

  const passingBefore = await step('passing_before_ttl_pass');
  assert.deepEqual(passingBefore.ids, [], 'a TTL check starts critical: not passing before its first pass');
  assert.ok(Number(passingBefore.index) >= 1, `X-Consul-Index >= 1: ${passingBefore.index}`);
  const allBefore = await step('all_before_ttl_pass');
  assert.deepEqual(allBefore.statuses, { 'billing-1': ['critical'] }, 'listed, critical, before the first pass');

  assert.equal((await step('ttl_pass')).result, true, 'agent.check.ttl_pass returns True (HTTP 200)');

  const passing = await step('health_passing');
  assert.equal(passing.entries.length, 1, JSON.stringify(passing.entries));
  const [entry] = passing.entries;
  assert.equal(entry.Service.ID, 'billing-1');
  assert.equal(entry.Service.Service, 'billing');
  assert.equal(entry.Service.Address, '127.0.0.1');
  assert.equal(entry.Service.Port, 9101);
  assert.deepEqual(entry.Service.Tags, ['py', 'v1']);
  assert.deepEqual(entry.Service.Meta, { team: 'payments' });
  assert.equal(typeof entry.Node.Node, 'string');
  const check = entry.Checks.find((c) => c.CheckID === 'service:billing-1');
  assert.ok(check, `the TTL check is service:billing-1: ${JSON.stringify(entry.Checks)}`);
  assert.equal(check.Status, 'passing');
  assert.equal(check.ServiceID, 'billing-1');
  assert.equal(check.ServiceName, 'billing');
  assert.equal(check.Output, 'ready', 'the pass note becomes the check output');

  assert.deepEqual((await step('reregistered')).ids, ['billing-1'], 're-registering keeps the passing status');

  const services = (await step('catalog_services')).result;
  assert.ok(Array.isArray(services) && services.length === 2, `catalog.services() is (index, services): ${JSON.stringify(services)}`);
  assert.deepEqual([...services[1].billing].sort(), ['py', 'v1'], JSON.stringify(services[1]));

  const catalog = (await step('catalog_service')).result;
  assert.ok(Array.isArray(catalog) && catalog.length === 2, `catalog.service() is (index, nodes): ${JSON.stringify(catalog)}`);
  assert.equal(catalog[1].length, 1, JSON.stringify(catalog[1]));
  assert.equal(catalog[1][0].ServiceID, 'billing-1');
  assert.equal(catalog[1][0].ServiceName, 'billing');
  assert.equal(catalog[1][0].ServiceAddress, '127.0.0.1');
  assert.equal(catalog[1][0].ServicePort, 9101);
  assert.deepEqual(catalog[1][0].ServiceTags, ['py', 'v1']);
  assert.deepEqual(catalog[1][0].ServiceMeta, { team: 'payments' });

  // Nothing changes: the call is held for about the wait and answers the same index.
  const unchanged = await step('blocking_unchanged');
  assert.equal(unchanged.index, unchanged.sent_index, 'nothing changed, same index');
  assert.deepEqual(unchanged.ids, ['billing-1']);
  assert.ok(unchanged.elapsed >= 1.5, `held for about the 2s wait, not answered at once: ${unchanged.elapsed} s`);
  assert.ok(unchanged.elapsed < 10, `answered after about the 2s wait: ${unchanged.elapsed} s`);

  // A registration while the next call is held ends it early, with a greater index.
  const blocking = await step('blocking');
  py.send('go');
  const held = await eventually(
    () => proxy.inFlight((r) => r.url.startsWith('/v1/health/service/billing?') && r.url.includes(`index=${blocking.index}`))[0],
    { deadlineMs: 10_000, everyMs: 20, what: 'py-consul blocking call in flight' },
  );
  assert.match(held.url, /[?&]wait=30s(&|$)/, held.url);
  const second = await put(server.url, '/v1/agent/service/register', {
    headers: { 'x-consul-token': server.token },
    body: { Name: 'billing', ID: 'billing-2', Address: '127.0.0.1', Port: 9102, Tags: ['node'] },
  });
  assert.equal(second.status, 200, `register billing-2: ${second.status} ${second.body}`);
  const changed = await step('blocking_changed');
  assert.deepEqual(changed.ids, ['billing-1', 'billing-2'], 'the held call returns with the new instance');
  assert.ok(Number(changed.index) > Number(changed.sent_index), `a greater index: ${changed.sent_index} -> ${changed.index}`);
  assert.ok(changed.elapsed < 20, `returned on the change, well before the 30s wait: ${changed.elapsed} s`);

  const tags = await step('tag_filters');
  assert.deepEqual(tags.both, ['billing-1'], 'tag=py&tag=v1');
  assert.deepEqual(tags.node, ['billing-2'], 'tag=node');
  assert.deepEqual(tags.none, [], 'tag=py&tag=node: no instance has both');

  assert.equal((await step('deregister')).result, true, 'agent.service.deregister returns True (HTTP 200)');
  assert.equal((await step('deregister_unknown')).result, false, 'deregistering an unknown id is a 404 (False)');
  assert.deepEqual((await step('after_deregister')).ids, ['billing-2']);
  await step('done');
  assert.deepEqual(await py.exited, { code: 0, signal: null }, py.output());
});
