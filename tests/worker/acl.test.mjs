// Access control against a real `wrangler dev --local`: reads closed by default, scoped tokens
// created, used, refused outside their scope (HTTP and WebSocket) and revoked, rotation without
// a lost lease, and the per-client rate limit (429 with Retry-After).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';

import { startWrangler } from '../support/wrangler.mjs';

let server;
before(async () => {
  server = await startWrangler({ cacheMs: 0, publicReads: false });
});
after(() => server?.stop());

const bearer = (token) => ({ authorization: `Bearer ${token}` });

async function createToken(policies, description = 'test') {
  const res = await server.fetch('/v1/acl/tokens', {
    method: 'POST',
    headers: { ...server.auth(), 'content-type': 'application/json' },
    body: JSON.stringify({ description, policies }),
  });
  assert.equal(res.status, 201, await res.clone().text());
  return res.json();
}

function renew(token, id) {
  return server.fetch(`/v1/services/api/1.0.0/instances/${id}`, {
    method: 'PUT',
    headers: { ...bearer(token), 'content-type': 'application/json' },
    body: JSON.stringify({ url: `127.0.0.1:${4000 + Number(id.slice(1))}`, ttl: 5 }),
  });
}

/** The WebSocket upgrade's answer: 'open' or the HTTP status it was refused with. */
function upgrade(path) {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${server.url.replace('http', 'ws')}${path}`);
    ws.on('open', () => {
      ws.close();
      resolve('open');
    });
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode));
    ws.on('error', () => {});
  });
}

describe('closed reads and scoped tokens', () => {
  test('reads need a token unless VASCO_PUBLIC_READS is set', async () => {
    assert.equal((await server.fetch('/v1/services')).status, 401);
    assert.equal((await server.fetch('/v1/services/api')).status, 401);
    assert.equal((await server.fetch('/health')).status, 200, 'health stays open');
    assert.equal((await server.fetch('/v1/services', { headers: server.auth() })).status, 200);
  });

  test('a token scoped to api reads and writes api only, also over WebSockets', async () => {
    const api = await createToken([{ write: ['api'] }]);
    assert.match(api.secret, /^vt\.[0-9a-f]+\.[0-9a-f]+$/);
    assert.equal((await renew(api.secret, 'a9')).status, 200);
    const other = await server.fetch('/v1/services/auth/1.0.0/instances/x', {
      method: 'PUT',
      headers: { ...bearer(api.secret), 'content-type': 'application/json' },
      body: JSON.stringify({ url: 'h:1' }),
    });
    assert.equal(other.status, 403);
    assert.equal((await other.json()).error.code, 'forbidden');
    assert.equal((await server.fetch('/v1/services/auth', { headers: bearer(api.secret) })).status, 403);
    assert.equal((await server.fetch('/v1/services', { headers: bearer(api.secret) })).status, 403, 'the catalog needs read on *');
    assert.equal(await upgrade(`/v1/services/api/watch?token=${api.secret}`), 'open');
    assert.equal(await upgrade(`/v1/services/auth/watch?token=${api.secret}`), 403);
    assert.equal(await upgrade(`/v1/watch?token=${api.secret}`), 403);
    // Consul's dialect: the same token, 403 for another service, as Consul clients expect.
    const consul = await server.fetch('/v1/agent/service/register', {
      method: 'PUT',
      headers: { 'x-consul-token': api.secret },
      body: JSON.stringify({ Name: 'auth', Address: '127.0.0.1', Port: 1 }),
    });
    assert.equal(consul.status, 403);
    // Listing shows the token without its secret; the secret is shown only at creation.
    const listed = await (await server.fetch('/v1/acl/tokens', { headers: server.auth() })).text();
    assert.ok(listed.includes(api.id));
    assert.ok(!listed.includes(api.secret.split('.')[2]));
    assert.equal((await server.fetch('/v1/acl/tokens', { headers: bearer(api.secret) })).status, 403);
  });

  test('rotation: the fleet moves from A to B, A is revoked, no lease is lost', async () => {
    const fleet = ['r1', 'r2', 'r3'];
    const a = await createToken([{ write: ['api'] }], 'fleet A');
    for (const id of fleet) assert.equal((await renew(a.secret, id)).status, 200);
    const b = await createToken([{ write: ['api'] }], 'fleet B');
    for (let switched = 0; switched <= fleet.length; switched++) {
      for (const [i, id] of fleet.entries()) {
        const res = await renew(i < switched ? b.secret : a.secret, id);
        assert.equal(res.status, 200, `${id} after ${switched} switched`);
      }
    }
    const revoked = await server.fetch(`/v1/acl/tokens/${a.id}`, { method: 'DELETE', headers: server.auth() });
    assert.equal(revoked.status, 204);
    assert.equal((await renew(a.secret, 'r1')).status, 401, 'refused on the very next request');
    for (const id of fleet) assert.equal((await renew(b.secret, id)).status, 200);
    const live = await (await server.fetch('/v1/services/api?consistent', { headers: bearer(b.secret) })).json();
    const ids = live.instances.map((i) => i.id);
    for (const id of fleet) assert.ok(ids.includes(id), `${id} kept its lease`);
  });
});

describe('rate limit', () => {
  let limited;
  before(async () => {
    limited = await startWrangler({ rateLimit: true });
  });
  after(() => limited?.stop());

  test('a client over the limit gets 429 with Retry-After', async () => {
    let refused;
    // The limit is 600 a minute per client address; a bounded loop crosses it.
    for (let i = 0; i < 1_000 && !refused; i++) {
      const res = await limited.fetch('/health');
      if (res.status === 429) refused = { headers: res.headers, body: await res.json() };
      else {
        assert.equal(res.status, 200);
        await res.arrayBuffer();
      }
    }
    assert.ok(refused, 'no 429 within 1000 requests');
    assert.equal(refused.headers.get('retry-after'), '60');
    assert.equal(refused.body.error.code, 'rate_limited');
  });
});
