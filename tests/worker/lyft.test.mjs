// lyft/discovery's REST API (Envoy's v1 SDS) against a real `wrangler dev --local`: the
// original's test cases as HTTP requests (compat-clients.md, section D, cases 1 to 30), the
// round trips between this dialect and Vasco's own API, and what Vasco adds (tokens, JSON
// bodies, CF-Connecting-IP). Where Vasco deliberately answers differently from the original,
// the test asserts Vasco's answer and says so (the README lists the differences).
//
// Cases 28 and 29 (hosts seen a year ago / 11 minutes ago are expired at the 600 s TTL) need
// time: they run natively on an injected clock (crates/vasco-worker/src/tests/lyft.rs); here a
// second Worker with a 2 s host TTL shows the TTL variable at work end to end, polling to a
// deadline.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { startWrangler } from '../support/wrangler.mjs';
import { call, eventually } from './helpers.mjs';

const TAGS = { az: 'foo', instance_id: 'bar', region: 'baz' };
const PYTHON_DATETIME = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}$/;

let server;
before(async () => {
  server = await startWrangler({ cacheMs: 0 });
});
after(() => server?.stop());

/** The original tests' registration form for `ip` (tags as JSON text). */
function registration(ip, { lbWeight, tags = TAGS, ...rest } = {}) {
  const allTags = lbWeight === undefined ? tags : { ...tags, load_balancing_weight: lbWeight };
  const fields = { service_repo_name: 'bar', port: '1000', revision: 'bjkc7y8cebyyuide2uincbyu', tags: JSON.stringify(allTags), ...rest };
  if (ip !== undefined) fields.ip = ip;
  return fields;
}

/** POSTs `fields` form-encoded (as the original's clients do) with the write token. */
function postForm(path, fields, headers = {}) {
  return call(server, 'POST', path, {
    raw: new URLSearchParams(fields).toString(),
    headers: { ...server.auth(), 'content-type': 'application/x-www-form-urlencoded', ...headers },
  });
}

const register = (service, fields, headers) => postForm(`/v1/registration/${service}`, fields, headers);
const setWeight = (path, weight) => postForm(path, { load_balancing_weight: weight });
const del = (path) => call(server, 'DELETE', path, { headers: server.auth() });

async function hosts(service) {
  const out = await call(server, 'GET', `/v1/registration/${service}`);
  assert.equal(out.status, 200, JSON.stringify(out.body));
  return out.body.hosts;
}

async function registered(service, fields, headers) {
  const out = await register(service, fields, headers);
  assert.equal(out.status, 200, `${service}: ${out.res.headers.get('x-vasco-error')}`);
  assert.deepEqual(out.body, {});
  return out;
}

/** Asserts the original's bare `400 {}`, with Vasco's reason in x-vasco-error. */
function assertRefused(out, what) {
  assert.equal(out.status, 400, `${what}: ${JSON.stringify(out.body)}`);
  assert.deepEqual(out.body, {}, what);
  assert.ok(out.res.headers.get('x-vasco-error'), `${what}: the reason is in x-vasco-error`);
}

/** `last_check_in` (Python's UTC datetime text) in ms since the epoch. */
const checkInMs = (text) => Date.parse(`${text.replace(' ', 'T')}Z`);

describe('GET', () => {
  test('1. an unknown service is 200 with no hosts, its name and the env', async () => {
    const out = await call(server, 'GET', '/v1/registration/foo');
    assert.equal(out.status, 200);
    assert.deepEqual(out.body, { hosts: [], service: 'foo', env: 'development' });
  });

  test('2. the listing returns the stored hosts as stored, a null repo included (registered natively)', async () => {
    const post = await registered('listing', registration('10.10.10.10'));
    const now = Number(post.res.headers.get('x-vasco-now'));
    const put = await call(server, 'PUT', '/v1/services/listing/1.4.0/instances/n1', {
      body: { url: '11.11.11.11:11', zone: 'woot' },
      headers: server.auth(),
    });
    assert.equal(put.status, 200);
    const list = await hosts('listing');
    assert.equal(list.length, 2);
    const [native, lyft] = list;
    assert.match(lyft.last_check_in, PYTHON_DATETIME);
    assert.equal(checkInMs(lyft.last_check_in), now, 'last_check_in is the registration, UTC, to the ms');
    assert.deepEqual(lyft, {
      service: 'listing',
      ip_address: '10.10.10.10',
      service_repo_name: 'bar',
      port: 1000,
      revision: 'bjkc7y8cebyyuide2uincbyu',
      last_check_in: lyft.last_check_in,
      tags: TAGS,
    });
    assert.deepEqual(native, {
      service: 'listing',
      ip_address: '11.11.11.11',
      service_repo_name: null,
      port: 11,
      revision: '1.4.0',
      last_check_in: native.last_check_in,
      tags: { az: 'woot', instance_id: 'n1' },
    });
  });

  test('3. a repo with no hosts is 200 with an empty list', async () => {
    const out = await call(server, 'GET', '/v1/registration/repo/nothing-here');
    assert.equal(out.status, 200);
    assert.deepEqual(out.body, { hosts: [], service_repo_name: 'nothing-here', env: 'development' });
  });

  test('4. a repo lookup returns the hosts of several services', async () => {
    await registered('repo-a', registration('10.10.10.10', { service_repo_name: 'shared-repo' }));
    await registered('repo-b', registration('11.11.11.11', { service_repo_name: 'shared-repo' }));
    await registered('repo-c', registration('12.12.12.12', { service_repo_name: 'other-repo' }));
    const out = await call(server, 'GET', '/v1/registration/repo/shared-repo');
    assert.equal(out.status, 200);
    assert.equal(out.body.service_repo_name, 'shared-repo');
    assert.deepEqual(
      out.body.hosts.map((h) => [h.service, h.ip_address]),
      [['repo-a', '10.10.10.10'], ['repo-b', '11.11.11.11']],
    );
  });
});

describe('POST /v1/registration', () => {
  test('5. all params "0" is 400 {}', async () => {
    const zeros = Object.fromEntries(['ip', 'auto_ip', 'port', 'revision', 'tags', 'service_repo_name'].map((k) => [k, '0']));
    assertRefused(await register('foo', zeros), 'all zero');
  });

  test('6. a valid form is 200 {}', async () => {
    await registered('foo', registration('10.10.10.10'));
  });

  test('7. an explicit ip wins over X-Forwarded-For; one host is stored', async () => {
    await registered('explicit', registration('10.10.10.10'), { 'x-forwarded-for': '192.168.216.186' });
    assert.deepEqual((await hosts('explicit')).map((h) => h.ip_address), ['10.10.10.10']);
  });

  test('8. auto_ip with X-Forwarded-For 192.168.216.186 stores that ip', async () => {
    await registered('auto-one', registration(undefined, { auto_ip: 'True' }), { 'x-forwarded-for': '192.168.216.186' });
    assert.deepEqual((await hosts('auto-one')).map((h) => h.ip_address), ['192.168.216.186']);
  });

  test('9. auto_ip outside 192.168.0.0/16 or with an octet over 255 is 400', async () => {
    for (const hop of ['0.168.216.186', '192.169.216.186', '192.168.256.186', '192.168.216.256']) {
      assertRefused(await register('auto-out', registration(undefined, { auto_ip: 'True' }), { 'x-forwarded-for': hop }), hop);
    }
    assert.deepEqual(await hosts('auto-out'), []);
  });

  test('10. with two X-Forwarded-For hops the last is used', async () => {
    await registered('auto-two', registration(undefined, { auto_ip: 'True' }), {
      'x-forwarded-for': '192.168.0.0,192.168.216.186',
    });
    assert.deepEqual((await hosts('auto-two')).map((h) => h.ip_address), ['192.168.216.186']);
  });

  test('11. neither ip nor auto_ip is 400', async () => {
    assertRefused(await register('foo', registration(undefined), { 'x-forwarded-for': '192.168.216.186' }), 'no ip');
  });

  test('12. an ip that is not a dotted quad, or has octets over 255, is refused', async () => {
    for (const ip of ['invalid.ip.address', '555.555.555.555', '10.10.10', '::1']) {
      assertRefused(await register('foo', registration(ip)), ip);
    }
  });

  test('13. port -1 is refused, and so is a non-numeric port (400 here; the original answered 500)', async () => {
    for (const port of ['-1', 'test', '0', '65536']) {
      assertRefused(await register('foo', registration('10.10.10.10', { port })), port);
    }
  });

  test('14. a missing revision is refused', async () => {
    const fields = registration('10.10.10.10');
    delete fields.revision;
    assertRefused(await register('foo', fields), 'no revision');
  });

  test('15. missing az, instance_id or region is refused', async () => {
    for (const tag of ['az', 'instance_id', 'region']) {
      const tags = { ...TAGS, [`invalid_${tag}`]: TAGS[tag] };
      delete tags[tag];
      assertRefused(await register('foo', registration('10.10.10.10', { tags })), tag);
    }
  });

  test('16. service_repo_name is optional', async () => {
    const fields = registration('10.10.10.10');
    delete fields.service_repo_name;
    await registered('no-repo', fields);
    assert.equal((await hosts('no-repo'))[0].service_repo_name, '');
  });

  test('tags that are not JSON: 400 with the original message', async () => {
    const out = await register('foo', { ...registration('10.10.10.10'), tags: '{nope' });
    assert.equal(out.status, 400);
    assert.deepEqual(out.body, { error: 'Invalid json supplied in tags' });
  });

  test('a re-POST is the heartbeat: last_check_in moves, tags merge, an unchanged beat writes nothing to KV', async () => {
    await registered('beat', registration('10.10.10.10', { tags: { ...TAGS, canary: true, team: 'maps' } }));
    const first = (await hosts('beat'))[0].last_check_in;
    const beat = await eventually(
      async () => {
        const out = await registered('beat', registration('10.10.10.10'));
        const now = (await hosts('beat'))[0].last_check_in;
        return now !== first && { out, now };
      },
      { deadlineMs: 5_000, everyMs: 5, what: 'a later check-in' },
    );
    assert.ok(checkInMs(beat.now) > checkInMs(first));
    assert.equal(beat.out.ops, 0, 'a renewal costs no KV operation');
    assert.deepEqual((await hosts('beat'))[0].tags, { ...TAGS, canary: true, team: 'maps' });
  });

  test('a JSON body registers too', async () => {
    const out = await call(server, 'POST', '/v1/registration/json-body', {
      body: { ip: '10.0.0.5', port: 8080, revision: 'abc', tags: { ...TAGS, canary: true } },
      headers: server.auth(),
    });
    assert.equal(out.status, 200, out.res.headers.get('x-vasco-error'));
    const [host] = await hosts('json-body');
    assert.equal(host.port, 8080);
    assert.equal(host.tags.canary, true);
  });

  test('CF-Connecting-IP wins over X-Forwarded-For for auto_ip (Cloudflare sets it at the edge)', async () => {
    await registered('auto-cf', registration(undefined, { auto_ip: '1' }), {
      'cf-connecting-ip': '203.0.113.7',
      'x-forwarded-for': '192.168.216.186',
    });
    assert.deepEqual((await hosts('auto-cf')).map((h) => h.ip_address), ['203.0.113.7']);
  });

  test('an invalid service name is 400 {"error"} (Vasco names: lowercase letters, digits, - _ .)', async () => {
    const out = await register('MyService', registration('10.10.10.10'));
    assert.equal(out.status, 400);
    assert.match(out.body.error, /name/);
  });
});

describe('DELETE /v1/registration', () => {
  test('17. an unknown host is 400', async () => {
    assertRefused(await del('/v1/registration/foo/1.1.1.1'), 'unknown');
  });

  test('18. a missing ip is 400', async () => {
    assertRefused(await del('/v1/registration/foo'), 'no ip');
    assertRefused(await del('/v1/registration/foo/'), 'no ip, trailing slash');
  });

  test('19. the ip "bar" is 400', async () => {
    assertRefused(await del('/v1/registration/foo/bar'), 'bar');
  });

  test('20. register, then delete: 200 {}', async () => {
    await registered('deleted', registration('10.10.10.10'));
    const out = await del('/v1/registration/deleted/10.10.10.10');
    assert.equal(out.status, 200);
    assert.deepEqual(out.body, {});
    assert.deepEqual(await hosts('deleted'), []);
  });
});

describe('POST /v1/loadbalancing', () => {
  test('21. weight 10 is 204, stored, and survives re-registration', async () => {
    await registered('weights', registration('10.10.10.10'));
    const out = await setWeight('/v1/loadbalancing/weights/10.10.10.10', '10');
    assert.equal(out.status, 204);
    assert.equal(out.body, null);
    const native = await call(server, 'GET', '/v1/services/weights?consistent');
    assert.equal(native.body.instances[0].weight, 10, 'the weight is the instance weight');
    await registered('weights', registration('10.10.10.10'));
    assert.equal((await hosts('weights'))[0].tags.load_balancing_weight, 10);
  });

  test('22. GET shows the weight as the integer 10', async () => {
    await registered('weights-get', registration('10.10.10.10'));
    assert.equal((await setWeight('/v1/loadbalancing/weights-get/10.10.10.10', '10')).status, 204);
    const list = await hosts('weights-get');
    assert.equal(list.length, 1);
    assert.equal(list[0].tags.load_balancing_weight, 10);
  });

  test('23. an update from 10 to 50 is 204', async () => {
    await registered('weights-up', registration('10.10.10.10', { lbWeight: 10 }));
    assert.equal((await hosts('weights-up'))[0].tags.load_balancing_weight, 10);
    assert.equal((await setWeight('/v1/loadbalancing/weights-up/10.10.10.10', '50')).status, 204);
    assert.equal((await hosts('weights-up'))[0].tags.load_balancing_weight, 50);
  });

  test('24. the service-wide call sets 50 on both hosts', async () => {
    await registered('weights-all', registration('10.10.10.10', { lbWeight: 10 }));
    await registered('weights-all', registration('10.10.10.11', { lbWeight: 10 }));
    assert.equal((await setWeight('/v1/loadbalancing/weights-all', '50')).status, 204);
    assert.deepEqual((await hosts('weights-all')).map((h) => h.tags.load_balancing_weight), [50, 50]);
  });

  test('25. an unknown host is 404 Host not found', async () => {
    const out = await setWeight('/v1/loadbalancing/weights-none/10.10.10.10', '10');
    assert.equal(out.status, 404);
    assert.deepEqual(out.body, { error: 'Host not found' });
  });

  test('26. "not_an_integer" is 400', async () => {
    const out = await setWeight('/v1/loadbalancing/weights/10.10.10.10', 'not_an_integer');
    assert.equal(out.status, 400);
    assert.deepEqual(out.body, { error: 'Invalid load_balancing_weight. Supply an integer between 1 and 100.' });
  });

  test('27. 9001 is 400', async () => {
    const out = await setWeight('/v1/loadbalancing/weights/10.10.10.10', '9001');
    assert.equal(out.status, 400);
    assert.deepEqual(out.body, { error: 'Invalid load_balancing_weight. Supply an integer between 1 and 100.' });
  });
});

describe('storage', () => {
  test('30. two services share one ip as separate hosts; the repo lists both; deleting one leaves the other', async () => {
    await registered('share-a', registration('10.10.10.10', { service_repo_name: 'share-repo' }));
    await registered('share-b', registration('10.10.10.10', { service_repo_name: 'share-repo' }));
    const repo = await call(server, 'GET', '/v1/registration/repo/share-repo');
    assert.deepEqual(repo.body.hosts.map((h) => h.service), ['share-a', 'share-b']);
    assert.equal((await del('/v1/registration/share-a/10.10.10.10')).status, 200);
    assert.deepEqual(await hosts('share-a'), []);
    assert.deepEqual((await hosts('share-b')).map((h) => h.ip_address), ['10.10.10.10']);
  });
});

describe('one registry, two dialects', () => {
  test('registered through lyft, read through the native API and /v1/instances (the page)', async () => {
    await registered('round-trip', registration('10.1.2.3', { tags: { ...TAGS, canary: true, load_balancing_weight: 20 } }));
    const native = await call(server, 'GET', '/v1/services/round-trip?consistent');
    assert.equal(native.status, 200);
    const [instance] = native.body.instances;
    assert.equal(instance.version, '0.0.0');
    assert.equal(instance.id, '10.1.2.3');
    assert.equal(instance.url, '10.1.2.3:1000');
    assert.equal(instance.zone, 'foo');
    assert.equal(instance.weight, 20);
    assert.deepEqual(instance.tags, ['canary']);
    assert.deepEqual(instance.meta, {
      revision: 'bjkc7y8cebyyuide2uincbyu',
      'lyft.service_repo_name': 'bar',
      'lyft.instance_id': 'bar',
      'lyft.region': 'baz',
    });
    assert.equal(instance.ttl_ms, 600_000, 'the lease is the host TTL');
    // The page lists every instance from the KV snapshots, written within a second or so.
    await eventually(
      async () => {
        const all = await call(server, 'GET', '/v1/instances');
        return all.body.instances.some((i) => i.service === 'round-trip' && i.id === '10.1.2.3');
      },
      { deadlineMs: 10_000, what: 'the lyft host in /v1/instances' },
    );
  });

  test('registered natively, read through lyft', async () => {
    const put = await call(server, 'PUT', '/v1/services/native-side/2.0.0/instances/api-1', {
      body: { url: 'http://10.9.8.7:8080/base', zone: 'eu-1', weight: 4, tags: ['canary'], meta: { revision: 'abc' } },
      headers: server.auth(),
    });
    assert.equal(put.status, 200);
    const [host] = await hosts('native-side');
    assert.deepEqual(
      { ...host, last_check_in: undefined },
      {
        service: 'native-side',
        ip_address: '10.9.8.7',
        service_repo_name: null,
        port: 8080,
        revision: 'abc',
        last_check_in: undefined,
        tags: { az: 'eu-1', canary: true, load_balancing_weight: 4, instance_id: 'api-1' },
      },
    );
    assert.equal(checkInMs(host.last_check_in), put.body.expires_at - put.body.ttl_ms);
  });
});

describe('tokens and the rest', () => {
  test('writes need the token: a bearer header, or ?token= for tools that cannot set headers', async () => {
    const body = new URLSearchParams(registration('10.10.10.10')).toString();
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    const none = await call(server, 'POST', '/v1/registration/tokens', { raw: body, headers: form });
    assert.equal(none.status, 401);
    assert.equal(none.body.error.code, 'unauthorized');
    const wrong = await call(server, 'POST', '/v1/registration/tokens?token=nope', { raw: body, headers: form });
    assert.equal(wrong.status, 401);
    const query = await call(server, 'POST', `/v1/registration/tokens?token=${encodeURIComponent(server.token)}`, {
      raw: body,
      headers: form,
    });
    assert.equal(query.status, 200);
    const del401 = await call(server, 'DELETE', '/v1/registration/tokens/10.10.10.10');
    assert.equal(del401.status, 401);
    assert.equal((await hosts('tokens')).length, 1);
  });

  test('GET /healthcheck is OK', async () => {
    const res = await server.fetch('/healthcheck');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/plain/);
    assert.equal(await res.text(), 'OK');
  });
});

describe('the host TTL end to end (VASCO_LYFT_HOST_TTL_S=2)', () => {
  let short;
  before(async () => {
    short = await startWrangler({ vars: { VASCO_LYFT_HOST_TTL_S: '2', VASCO_LYFT_ENV: 'production' } });
  });
  after(() => short?.stop());

  test('28, 29. a host that stops beating leaves at the TTL; one that beats stays; last_check_in is UTC', async () => {
    const post = (ip) =>
      call(short, 'POST', '/v1/registration/expiring', {
        raw: new URLSearchParams(registration(ip)).toString(),
        headers: { ...short.auth(), 'content-type': 'application/x-www-form-urlencoded' },
      });
    const silent = await post('10.0.0.1');
    assert.equal(silent.status, 200);
    const registeredAt = Number(silent.res.headers.get('x-vasco-now'));
    const list = async () => (await call(short, 'GET', '/v1/registration/expiring')).body;
    const first = await list();
    assert.equal(first.env, 'production');
    assert.equal(checkInMs(first.hosts[0].last_check_in), registeredAt, 'UTC, whatever the local time zone');
    const ips = await eventually(
      async () => {
        assert.equal((await post('10.0.0.2')).status, 200);
        const { hosts: now } = await list();
        const ipsNow = now.map((h) => h.ip_address);
        return !ipsNow.includes('10.0.0.1') && ipsNow;
      },
      { deadlineMs: 15_000, everyMs: 250, what: 'the silent host to expire' },
    );
    assert.deepEqual(ips, ['10.0.0.2']);
  });
});
