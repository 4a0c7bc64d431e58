// Configuration: no VASCO_TOKEN means writes are refused with 503 (reads still work), and
// VASCO_READ_TOKEN closes the read routes (health and the OpenAPI document stay open).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { startWrangler } from '../support/wrangler.mjs';
import { call, errorCode } from './helpers.mjs';

describe('without VASCO_TOKEN', () => {
  let server;
  before(async () => {
    server = await startWrangler({ token: null });
  });
  after(() => server?.stop());

  test('writes are 503 with instructions, reads work', async () => {
    for (const method of ['PUT', 'DELETE']) {
      const out = await call(server, method, '/v1/services/api/1.0.0/instances/a', {
        body: { url: 'h:1' },
        headers: { authorization: 'Bearer anything' },
      });
      assert.equal(out.status, 503, method);
      assert.equal(errorCode(out), 'not_configured');
      assert.match(out.body.error.message, /VASCO_TOKEN/);
      assert.match(out.body.error.message, /wrangler secret put VASCO_TOKEN/);
      assert.match(out.body.error.message, /\.dev\.vars/);
    }
    const list = await call(server, 'GET', '/v1/services');
    assert.equal(list.status, 200);
    assert.deepEqual(list.body, { services: [] });
  });
});

describe('with VASCO_READ_TOKEN', () => {
  let server;
  before(async () => {
    server = await startWrangler({ readToken: 'reader-secret' });
  });
  after(() => server?.stop());

  test('reads need the read token (or the write token)', async () => {
    const reads = [
      ['GET', '/v1/services', undefined],
      ['GET', '/v1/services/api', undefined],
      ['POST', '/v1/resolve', { dependencies: { api: '*' } }],
    ];
    for (const [method, path, body] of reads) {
      const none = await call(server, method, path, { body });
      assert.equal(none.status, 401, `${method} ${path} without a token`);
      assert.equal(errorCode(none), 'unauthorized');
      const wrong = await call(server, method, path, { body, headers: { authorization: 'Bearer nope' } });
      assert.equal(wrong.status, 401);
      const reader = await call(server, method, path, { body, headers: { authorization: 'Bearer reader-secret' } });
      assert.equal(reader.status, 200, `${method} ${path} with the read token`);
      const writer = await call(server, method, path, { body, headers: server.auth() });
      assert.equal(writer.status, 200, `${method} ${path} with the write token`);
    }
  });

  test('health and the OpenAPI document stay open; the read token cannot write', async () => {
    assert.equal((await call(server, 'GET', '/health')).status, 200);
    assert.equal((await call(server, 'GET', '/v1/openapi.json')).status, 200);
    const write = await call(server, 'PUT', '/v1/services/api/1.0.0/instances/a', {
      body: { url: 'h:1' },
      headers: { authorization: 'Bearer reader-secret' },
    });
    assert.equal(write.status, 401);
  });
});
