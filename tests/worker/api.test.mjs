// The registry's HTTP API against a real `wrangler dev --local` (workerd + local KV), with the
// isolate cache off so every KV operation is visible in x-vasco-kv-ops.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { startWrangler } from '../support/wrangler.mjs';
import { call, errorCode, eventually, ids, kvOps, lookup, register } from './helpers.mjs';

let server;
before(async () => {
  server = await startWrangler({ cacheMs: 0 });
});
after(() => server?.stop());

describe('health and routing', () => {
  test('GET /health answers ok without touching KV', async () => {
    const before = Date.now();
    const out = await call(server, 'GET', '/health');
    const now = Number(out.res.headers.get('x-vasco-now'));
    assert.ok(now >= before - 1_000 && now <= Date.now() + 1_000, `x-vasco-now ${now} is the registry's clock`);
    assert.equal(out.status, 200);
    assert.deepEqual(out.body, { status: 'ok' });
    assert.equal(out.ops, 0);
    assert.match(out.res.headers.get('content-type'), /^application\/json/);
  });

  test('unknown routes are 404 with a JSON error', async () => {
    for (const path of ['/v1/nothing', '/v1/services/api/1.0.0', '/v2/services']) {
      const out = await call(server, 'GET', path);
      assert.equal(out.status, 404, path);
      assert.equal(errorCode(out), 'route_not_found');
      assert.equal(out.ops, 0);
    }
  });

  test('a wrong method is 405 with an Allow header', async () => {
    const cases = [
      ['POST', '/v1/services', 'GET, HEAD'],
      ['GET', '/v1/resolve', 'POST'],
      ['POST', '/v1/services/api/1.0.0/instances/a', 'PUT, DELETE'],
      ['DELETE', '/health', 'GET, HEAD'],
    ];
    for (const [method, path, allow] of cases) {
      const out = await call(server, method, path, { headers: server.auth() });
      assert.equal(out.status, 405, `${method} ${path}`);
      assert.equal(errorCode(out), 'method_not_allowed');
      assert.equal(out.res.headers.get('allow'), allow);
    }
  });
});

describe('register, heartbeat, lookup, deregister', () => {
  test('register then list', async () => {
    const before = Date.now();
    const put = await register(server, 'orders', '2.1.0', 'a1', {
      url: '10.0.0.1:3000',
      ttl: 10,
      tags: ['v1'],
      meta: { k: 'v' },
      weight: 3,
      zone: 'eu-1',
    });
    assert.equal(put.ops, 1, 'a new instance is one snapshot write');
    const stored = put.body;
    assert.equal(stored.service, 'orders');
    assert.equal(stored.version, '2.1.0');
    assert.equal(stored.id, 'a1');
    assert.equal(stored.url, '10.0.0.1:3000');
    assert.deepEqual(stored.tags, ['v1']);
    assert.deepEqual(stored.meta, { k: 'v' });
    assert.equal(stored.weight, 3);
    assert.equal(stored.zone, 'eu-1');
    assert.ok(stored.expires_at >= before + 10_000 - 50 && stored.expires_at <= Date.now() + 10_000 + 50);

    const out = await lookup(server, 'orders');
    assert.equal(out.ops, 1, 'a lookup of one service is one KV get');
    assert.equal(out.body.service, 'orders');
    assert.deepEqual(ids(out), ['a1']);
    assert.equal(out.body.instances[0].url, '10.0.0.1:3000');
  });

  test('only url is required; defaults apply', async () => {
    const put = await register(server, 'defaults', '1.0.0', 'x', { url: 'http://svc.local:8080/base' });
    assert.equal(put.body.weight, 1);
    assert.deepEqual(put.body.tags, []);
    assert.equal(put.body.expires_at - put.body.registered_at, 10_000);
  });

  test('re-registering is a renewal: no KV write, lease extended, still one instance', async () => {
    const first = await register(server, 'beat', '1.0.0', 'b1', { url: 'h:1', ttl: 5 });
    await eventually(async () => Date.now() > first.body.registered_at + 20, { deadlineMs: 1_000 });
    const again = await register(server, 'beat', '1.0.0', 'b1', { url: 'h:1', ttl: 5 });
    assert.equal(again.ops, 0, 'a renewal makes no KV operation');
    assert.equal(again.body.registered_at, first.body.registered_at);
    assert.ok(again.body.expires_at > first.body.expires_at, 'the lease moved forward');
    const out = await lookup(server, 'beat');
    assert.deepEqual(ids(out), ['b1']);
    // Snapshots do not record renewals: a member's lease reads as open for another ttl.
    assert.ok(out.body.instances[0].expires_at >= again.body.expires_at);
    const fresh = await lookup(server, 'beat', '?consistent');
    assert.equal(fresh.body.instances[0].expires_at, again.body.expires_at);
  });

  test('an instance with ttl 2 is gone from lookups within 3 s', async () => {
    const start = Date.now();
    await register(server, 'short', '1.0.0', 's1', { url: 'h:1', ttl: 2 });
    assert.deepEqual(ids(await lookup(server, 'short')), ['s1'], 'present right after registering');
    await eventually(async () => ids(await lookup(server, 'short')).length === 0, {
      deadlineMs: 3_000 - (Date.now() - start),
      everyMs: 50,
      what: 'ttl-2 instance gone',
    });
    const elapsed = Date.now() - start;
    assert.ok(elapsed >= 1_500, `not dropped early (gone after ${elapsed} ms)`);
    assert.ok(elapsed <= 3_000, `gone after ${elapsed} ms`);
  });

  test('delete: 204, then 404', async () => {
    await register(server, 'gone', '1.0.0', 'd1', { url: 'h:1' });
    await register(server, 'gone', '1.0.0', 'd2', { url: 'h:2' });
    const del = await call(server, 'DELETE', '/v1/services/gone/1.0.0/instances/d1', { headers: server.auth() });
    assert.equal(del.status, 204);
    assert.equal(del.body, null);
    assert.ok(del.ops <= 1, 'at most the snapshot write (coalesced to one a second)');
    assert.deepEqual(ids(await lookup(server, 'gone', '?consistent')), ['d2']);
    await eventually(async () => ids(await lookup(server, 'gone')).join() === 'd2', {
      deadlineMs: 2_000,
      what: 'the snapshot without d1',
    });
    const again = await call(server, 'DELETE', '/v1/services/gone/1.0.0/instances/d1', { headers: server.auth() });
    assert.equal(again.status, 404);
    assert.equal(errorCode(again), 'not_found');
  });

  test('an unknown service is an empty list', async () => {
    const out = await lookup(server, 'nobody-here');
    assert.deepEqual(out.body, { service: 'nobody-here', instances: [] });
  });

  test('lookup filters: version ranges, exact versions, tags, zone; newest first', async () => {
    await register(server, 'shop', '1.0.0', 'old', { url: 'h:1', zone: 'us' });
    await register(server, 'shop', '2.0.0', 'canary', { url: 'h:2', tags: ['canary', 'x'], zone: 'eu' });
    await register(server, 'shop', '2.1.0', 'new', { url: 'h:3', zone: 'eu' });
    assert.deepEqual(ids(await lookup(server, 'shop', '?consistent')), ['new', 'canary', 'old']);
    // Snapshot writes are coalesced to one a second: default reads catch up within it.
    await eventually(async () => ids(await lookup(server, 'shop')).length === 3, { deadlineMs: 2_000 });
    assert.deepEqual(ids(await lookup(server, 'shop', '?version=%5E2')), ['new', 'canary']);
    assert.deepEqual(ids(await lookup(server, 'shop', '?version=2.0.0')), ['canary']);
    assert.deepEqual(ids(await lookup(server, 'shop', '?version=v1.0.0')), ['old']);
    assert.deepEqual(ids(await lookup(server, 'shop', `?version=${encodeURIComponent('>=1 <2')}`)), ['old']);
    assert.deepEqual(ids(await lookup(server, 'shop', '?tag=canary')), ['canary']);
    assert.deepEqual(ids(await lookup(server, 'shop', '?tag=canary&tag=x')), ['canary']);
    assert.deepEqual(ids(await lookup(server, 'shop', '?tag=canary,nope')), []);
    assert.deepEqual(ids(await lookup(server, 'shop', '?zone=eu')), ['new', 'canary']);
    assert.deepEqual(ids(await lookup(server, 'shop', '?version=3')), []);
  });

  test('the catalog lists services, versions and live counts', async () => {
    await register(server, 'cat-a', '1.0.0', 'x', { url: 'h:1' });
    await register(server, 'cat-a', '1.1.0', 'y', { url: 'h:2' });
    await register(server, 'cat-a', '1.1.0', 'z', { url: 'h:3' });
    const counted = async () => {
      const out = await call(server, 'GET', '/v1/services');
      const entry = out.body.services.find((s) => s.name === 'cat-a');
      return entry && entry.versions.reduce((n, v) => n + v.instances, 0) === 3 ? out : null;
    };
    const out = await eventually(counted, { deadlineMs: 3_000, what: 'the catalog snapshot caught up' });
    assert.equal(out.status, 200);
    assert.equal(out.ops, 1, 'one KV get of the catalog');
    const entry = out.body.services.find((s) => s.name === 'cat-a');
    assert.deepEqual(entry, {
      name: 'cat-a',
      versions: [
        { version: '1.1.0', instances: 2, statuses: { passing: 2, warning: 0, critical: 0, maintenance: 0 } },
        { version: '1.0.0', instances: 1, statuses: { passing: 1, warning: 0, critical: 0, maintenance: 0 } },
      ],
    });
    const names = out.body.services.map((s) => s.name);
    assert.deepEqual(names, [...names].sort(), 'sorted by name');
  });

  test('every live instance in one request: one KV get for the catalog and one per service', async () => {
    await register(server, 'all-b', '1.0.0', 'x', { url: 'h:1' });
    await register(server, 'all-a', '1.0.0', 'old', { url: 'h:2' });
    await register(server, 'all-a', '2.0.0', 'new', { url: 'h:3' });
    const mine = (out) =>
      out.body.instances.filter((i) => i.service.startsWith('all-')).map((i) => `${i.service}@${i.version}/${i.id}`);
    const out = await eventually(
      async () => {
        const got = await call(server, 'GET', '/v1/instances');
        return mine(got).length === 3 ? got : null;
      },
      { deadlineMs: 3_000, what: 'the snapshots caught up' },
    );
    assert.equal(out.status, 200);
    const services = new Set(out.body.instances.map((i) => i.service));
    assert.equal(out.ops, 1 + services.size);
    assert.deepEqual(mine(out), ['all-a@2.0.0/new', 'all-a@1.0.0/old', 'all-b@1.0.0/x']);

    await register(server, 'all-c', '1.0.0', 'brief', { url: 'h:4', ttl: 3 });
    const listed = async () => (await call(server, 'GET', '/v1/instances')).body.instances.some((i) => i.service === 'all-c');
    await eventually(listed, { deadlineMs: 2_000, everyMs: 50, what: 'listed while its lease holds' });
    await eventually(async () => !(await listed()), { deadlineMs: 4_000, everyMs: 50, what: 'lapsed lease left /v1/instances' });
  });
});

describe('resolve', () => {
  before(async () => {
    await register(server, 'r-api', '2.0.0', 'a', { url: 'h:20', tags: ['canary'] });
    await register(server, 'r-api', '2.1.0', 'b', { url: 'h:21' });
    await register(server, 'r-api', '2.1.0', 'c', { url: 'h:22' });
    await register(server, 'r-api', '3.0.0', 'd', { url: 'h:30' });
    await register(server, 'r-auth', '1.0.0', 'a', { url: 'h:10' });
    await eventually(async () => ids(await lookup(server, 'r-api')).length === 4, {
      deadlineMs: 2_000,
      what: 'the coalesced snapshot of r-api',
    });
  });

  test('ranges, exact versions and a missing name in one call', async () => {
    const out = await call(server, 'POST', '/v1/resolve', {
      body: { dependencies: { 'r-api': '^2.0.0', 'r-auth': '1.0.0', 'r-none': '*' } },
    });
    assert.equal(out.status, 200);
    assert.equal(out.ops, 3, 'one KV get per dependency');
    assert.equal(out.body.resolved['r-api'].version, '2.1.0');
    assert.deepEqual(out.body.resolved['r-api'].instances.map((i) => i.id), ['b', 'c']);
    assert.equal(out.body.resolved['r-auth'].version, '1.0.0');
    assert.equal(out.body.resolved['r-auth'].instances[0].url, 'h:10');
    assert.deepEqual(out.body.missing, ['r-none']);
    assert.equal(out.body.resolved['r-none'], undefined);
  });

  test('exact versions with a v prefix, and versions that do not exist', async () => {
    const out = await call(server, 'POST', '/v1/resolve', {
      body: { dependencies: { 'r-api': 'v3.0.0', 'r-auth': '2.0.0' } },
    });
    assert.equal(out.body.resolved['r-api'].version, '3.0.0');
    assert.deepEqual(out.body.missing, ['r-auth']);
  });

  test('tags and zone narrow every dependency', async () => {
    const out = await call(server, 'POST', '/v1/resolve', {
      body: { dependencies: { 'r-api': '^2', 'r-auth': '*' }, tags: ['canary'] },
    });
    assert.equal(out.body.resolved['r-api'].version, '2.0.0');
    assert.deepEqual(out.body.resolved['r-api'].instances.map((i) => i.id), ['a']);
    assert.deepEqual(out.body.missing, ['r-auth']);
  });

  test('mocks win and cost no KV operation', async () => {
    const out = await call(server, 'POST', '/v1/resolve', {
      body: { dependencies: { 'r-api': '^2', 'r-auth': '1' }, mocks: { 'r-auth': 'localhost:3000' } },
    });
    assert.equal(out.body.resolved['r-auth'].mock, 'localhost:3000');
    assert.equal(out.ops, 1);
  });

  test('an empty dependency set resolves to nothing', async () => {
    const out = await call(server, 'POST', '/v1/resolve', { body: { dependencies: {} } });
    assert.equal(out.status, 200);
    assert.deepEqual(out.body, { resolved: {}, missing: [] });
    assert.equal(out.ops, 0);
  });
});

describe('auth', () => {
  test('writes without a token or with a wrong one are 401 and change nothing', async () => {
    await register(server, 'locked', '1.0.0', 'l1', { url: 'h:1' });
    const before = await lookup(server, 'locked', '?consistent');
    const path = '/v1/services/locked/1.0.0/instances/l1';
    const attempts = [
      ['PUT', {}],
      ['PUT', { authorization: 'Bearer wrong' }],
      ['PUT', { authorization: `Basic ${server.token}` }],
      ['DELETE', {}],
      ['DELETE', { authorization: 'Bearer wrong' }],
    ];
    for (const [method, headers] of attempts) {
      const out = await call(server, method, path, { body: { url: 'h:9', ttl: 1 }, headers });
      assert.equal(out.status, 401, `${method} ${JSON.stringify(headers)}`);
      assert.equal(errorCode(out), 'unauthorized');
      assert.equal(out.ops, 0);
      assert.match(out.res.headers.get('www-authenticate') ?? '', /^Bearer/);
    }
    assert.deepEqual((await lookup(server, 'locked', '?consistent')).body, before.body);
  });

  test('reads are open when no read token is set', async () => {
    assert.equal((await call(server, 'GET', '/v1/services')).status, 200);
    assert.equal((await call(server, 'POST', '/v1/resolve', { body: { dependencies: {} } })).status, 200);
  });
});

describe('bad input', () => {
  const path = '/v1/services/victim/1.0.0/instances/v1';
  before(async () => {
    await register(server, 'victim', '1.0.0', 'v1', { url: 'h:1', ttl: 600, tags: ['keep'], meta: { a: 'b' } });
  });

  const cases = [
    ['malformed JSON', path, '{"url": ', 400, 'bad_json'],
    ['empty body', path, '', 400, 'invalid_body'],
    ['not an object', path, '["h:1"]', 400, 'invalid_body'],
    ['missing url', path, '{}', 400, 'invalid_url'],
    ['url not a string', path, '{"url": 5}', 400, 'invalid_url'],
    ['url without port', path, '{"url": "host"}', 400, 'invalid_url'],
    ['url with another scheme', path, '{"url": "ftp://h:1"}', 400, 'invalid_url'],
    ['url too long', path, JSON.stringify({ url: `h${'x'.repeat(300)}:1` }), 400, 'invalid_url'],
    ['ttl 0', path, '{"url": "h:1", "ttl": 0}', 400, 'invalid_ttl'],
    ['ttl over an hour', path, '{"url": "h:1", "ttl": 3601}', 400, 'invalid_ttl'],
    ['ttl as a string', path, '{"url": "h:1", "ttl": "10"}', 400, 'invalid_ttl'],
    ['weight 0', path, '{"url": "h:1", "weight": 0}', 400, 'invalid_weight'],
    ['weight 1001', path, '{"url": "h:1", "weight": 1001}', 400, 'invalid_weight'],
    ['17 tags', path, JSON.stringify({ url: 'h:1', tags: Array(17).fill('t') }), 400, 'invalid_tags'],
    ['a 65-char tag', path, JSON.stringify({ url: 'h:1', tags: ['t'.repeat(65)] }), 400, 'invalid_tags'],
    ['tags not strings', path, '{"url": "h:1", "tags": [1]}', 400, 'invalid_tags'],
    ['bad zone', path, '{"url": "h:1", "zone": "eu 1"}', 400, 'invalid_zone'],
    ['unknown field', path, '{"url": "h:1", "tll": 3}', 400, 'invalid_body'],
    ['upper-case name', '/v1/services/Victim/1.0.0/instances/v1', '{"url": "h:1"}', 400, 'invalid_name'],
    ['64-char name', `/v1/services/${'n'.repeat(64)}/1.0.0/instances/v1`, '{"url": "h:1"}', 400, 'invalid_name'],
    ['bad version', '/v1/services/victim/one/instances/v1', '{"url": "h:1"}', 400, 'invalid_version'],
    ['bad id', '/v1/services/victim/1.0.0/instances/a%20b', '{"url": "h:1"}', 400, 'invalid_id'],
    ['129-char id', `/v1/services/victim/1.0.0/instances/${'i'.repeat(129)}`, '{"url": "h:1"}', 400, 'invalid_id'],
  ];

  for (const [what, target, raw, status, code] of cases) {
    test(`${what}: ${status} ${code}, stored data unchanged`, async () => {
      const before = await lookup(server, 'victim', '?consistent');
      const out = await call(server, 'PUT', target, { raw, headers: server.auth({ 'content-type': 'application/json' }) });
      assert.equal(out.status, status, JSON.stringify(out.body));
      assert.equal(errorCode(out), code);
      assert.equal(out.ops, 0, 'no KV operation for a refused request');
      assert.deepEqual((await lookup(server, 'victim', '?consistent')).body, before.body);
    });
  }

  test('a record over the 1024-byte metadata limit is refused with 400', async () => {
    const before = await lookup(server, 'victim', '?consistent');
    const meta = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`key${i}`, 'v'.repeat(200)]));
    const out = await call(server, 'PUT', path, { body: { url: 'h:1', meta }, headers: server.auth() });
    assert.equal(out.status, 400);
    assert.equal(errorCode(out), 'too_large');
    assert.equal(out.ops, 0);
    assert.deepEqual((await lookup(server, 'victim', '?consistent')).body, before.body);
  });

  test('a body over 16 KiB is 413', async () => {
    const before = await lookup(server, 'victim', '?consistent');
    const raw = JSON.stringify({ url: 'h:1', meta: { pad: 'x'.repeat(17 * 1024) } });
    const out = await call(server, 'PUT', path, { raw, headers: server.auth() });
    assert.equal(out.status, 413);
    assert.equal(errorCode(out), 'payload_too_large');
    assert.deepEqual((await lookup(server, 'victim', '?consistent')).body, before.body);
    const resolve = await call(server, 'POST', '/v1/resolve', { raw: ' '.repeat(16 * 1024 + 1) });
    assert.equal(resolve.status, 413);
  });

  test('bad lookups name the field', async () => {
    for (const [query, code] of [
      ['?version=not-a-range!', 'invalid_version'],
      ['?tag=', 'invalid_tag'],
      ['?zone=', 'invalid_zone'],
      ['?versoin=1', 'invalid_versoin'],
    ]) {
      const out = await call(server, 'GET', `/v1/services/victim${query}`);
      assert.equal(out.status, 400, query);
      assert.equal(errorCode(out), code);
    }
    const name = await call(server, 'GET', '/v1/services/Bad_Name');
    assert.equal(name.status, 400);
    assert.equal(errorCode(name), 'invalid_name');
  });

  test('bad resolve bodies name the field', async () => {
    for (const [raw, code] of [
      ['{', 'bad_json'],
      ['{}', 'invalid_dependencies'],
      ['{"dependencies": ["api"]}', 'invalid_dependencies'],
      ['{"dependencies": {"API": "1"}}', 'invalid_dependencies'],
      ['{"dependencies": {"api": "not a range!"}}', 'invalid_dependencies'],
      ['{"dependencies": {"api": 1}}', 'invalid_dependencies'],
      ['{"dependencies": {}, "tags": "x"}', 'invalid_tags'],
      ['{"dependencies": {}, "extra": 1}', 'invalid_body'],
    ]) {
      const out = await call(server, 'POST', '/v1/resolve', { raw });
      assert.equal(out.status, 400, raw);
      assert.equal(errorCode(out), code, raw);
    }
  });

  test('deleting with a bad id is 400 and deletes nothing', async () => {
    const before = await lookup(server, 'victim', '?consistent');
    const out = await call(server, 'DELETE', '/v1/services/victim/1.0.0/instances/a%20b', { headers: server.auth() });
    assert.equal(out.status, 400);
    assert.equal(errorCode(out), 'invalid_id');
    assert.deepEqual((await lookup(server, 'victim', '?consistent')).body, before.body);
  });
});

describe('openapi.json', () => {
  test('is an OpenAPI 3 document listing exactly the served routes', async () => {
    const out = await call(server, 'GET', '/v1/openapi.json');
    assert.equal(out.status, 200);
    const doc = out.body;
    assert.match(doc.openapi, /^3\.\d+\.\d+$/);
    assert.equal(typeof doc.info.title, 'string');
    assert.equal(typeof doc.info.version, 'string');

    const documented = [];
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const method of Object.keys(item)) documented.push(`${method.toUpperCase()} ${path}`);
    }
    assert.deepEqual(documented.sort(), [
      'DELETE /v1/acl/tokens/{id}',
      'DELETE /v1/registration/{service}',
      'DELETE /v1/registration/{service}/{ip}',
      'DELETE /v1/services/{name}/{version}/instances/{id}',
      'GET /health',
      'GET /healthcheck',
      'GET /v1/acl/tokens',
      'GET /v1/agent/checks',
      'GET /v1/agent/self',
      'GET /v1/agent/services',
      'GET /v1/catalog/datacenters',
      'GET /v1/catalog/service/{service}',
      'GET /v1/catalog/services',
      'GET /v1/health/checks/{service}',
      'GET /v1/health/service/{service}',
      'GET /v1/instances',
      'GET /v1/openapi.json',
      'GET /v1/registration/repo/{repo}',
      'GET /v1/registration/{service}',
      'GET /v1/services',
      'GET /v1/services/{name}',
      'GET /v1/services/{name}/watch',
      'GET /v1/services/{name}/{version}/instances/{id}/lease',
      'GET /v1/status/leader',
      'GET /v1/watch',
      'POST /v1/acl/tokens',
      'POST /v1/loadbalancing/{service}',
      'POST /v1/loadbalancing/{service}/{ip}',
      'POST /v1/registration/{service}',
      'POST /v1/resolve',
      'PUT /v1/agent/check/{verb}/{check_id}',
      'PUT /v1/agent/service/deregister/{id}',
      'PUT /v1/agent/service/maintenance/{id}',
      'PUT /v1/agent/service/register',
      'PUT /v1/services/{name}/{version}/instances/{id}',
      'PUT /v1/services/{name}/{version}/instances/{id}/status',
    ]);

    // Structural validity: every operation has responses with descriptions, every path
    // placeholder is a declared path parameter, and every $ref points into the document.
    const refs = [];
    const walk = (node) => {
      if (Array.isArray(node)) node.forEach(walk);
      else if (node && typeof node === 'object') {
        for (const [key, value] of Object.entries(node)) {
          if (key === '$ref') refs.push(value);
          else walk(value);
        }
      }
    };
    walk(doc);
    assert.ok(refs.length > 0);
    for (const ref of refs) {
      assert.match(ref, /^#\//);
      const target = ref.slice(2).split('/').reduce((node, part) => node?.[part], doc);
      assert.ok(target, `dangling ${ref}`);
    }
    for (const [path, item] of Object.entries(doc.paths)) {
      const placeholders = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
      for (const [method, op] of Object.entries(item)) {
        assert.ok(Object.keys(op.responses).length > 0, `${method} ${path} has responses`);
        for (const [status, response] of Object.entries(op.responses)) {
          assert.match(status, /^[1-5]\d\d$/);
          assert.equal(typeof response.description, 'string', `${method} ${path} ${status}`);
        }
        const declared = (op.parameters ?? []).filter((p) => p.in === 'path').map((p) => p.name).sort();
        assert.deepEqual(declared, placeholders, `${method} ${path} path parameters`);
      }
    }
    assert.ok(doc.components.schemas.Error);
  });
});

test('every answer carries x-vasco-kv-ops', async () => {
  for (const [method, path] of [['GET', '/health'], ['GET', '/nope'], ['GET', '/v1/openapi.json']]) {
    const res = await server.fetch(path, { method });
    await res.arrayBuffer();
    assert.ok(Number.isInteger(kvOps(res)));
  }
});
