// The Worker's HTTP surface against a real `wrangler dev --local`: methods (unknown ones are
// 405, HEAD answers like GET without a body), the standard headers on every answer, bodies read
// as a stream with a running cap after the token check, and configured tokens with whitespace.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';

import { startWrangler } from '../support/wrangler.mjs';
import { call, errorCode, register } from './helpers.mjs';

let server;
before(async () => {
  server = await startWrangler({ cacheMs: 0 });
});
after(() => server?.stop());

/** Fills the route table's placeholders (as the OpenAPI document lists it) with valid values. */
const concrete = (pattern) =>
  pattern.replace('{name}', 'api').replace('{version}', '1.0.0').replace('{id}', 'a');

function assertStandardHeaders(res, what) {
  const now = res.headers.get('x-vasco-now');
  assert.match(now ?? '', /^\d+$/, `${what}: x-vasco-now`);
  assert.match(res.headers.get('x-vasco-kv-ops') ?? '', /^\d+$/, `${what}: x-vasco-kv-ops`);
}

/**
 * Sends a chunked body of up to `total` bytes with node:http, writing only as fast as the
 * connection drains, and stops writing as soon as the response arrives. Resolves with the
 * status, headers, body and how many bytes had been handed to the socket when the answer came.
 */
function streamUntilAnswered(method, path, headers, total) {
  return new Promise((resolve, reject) => {
    const chunk = Buffer.alloc(64 * 1024, 0x20); // JSON whitespace
    let sent = 0;
    let sentWhenAnswered = null;
    const req = http.request({
      host: '127.0.0.1',
      port: server.port,
      method,
      path,
      headers: { 'content-type': 'application/json', ...headers }, // no length: chunked
    });
    req.on('response', (res) => {
      sentWhenAnswered = sent;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => {
        body += d;
      });
      res.on('end', () => {
        req.destroy();
        resolve({ status: res.statusCode, headers: res.headers, body, sentWhenAnswered, total });
      });
      res.on('error', reject);
    });
    req.on('error', (err) => {
      // Once answered, the server may close the connection mid-upload; that is fine.
      if (sentWhenAnswered === null) reject(err);
    });
    const pump = () => {
      while (sentWhenAnswered === null && sent < total) {
        sent += chunk.length;
        if (!req.write(chunk)) {
          req.once('drain', pump);
          return;
        }
      }
      if (sentWhenAnswered === null) req.end();
    };
    pump();
  });
}

describe('methods', () => {
  test('unknown methods are 405 with Allow, never treated as GET', async () => {
    for (const method of ['PROPFIND', 'BREW', 'PATCH', 'OPTIONS']) {
      const out = await call(server, method, '/v1/services');
      assert.equal(out.status, 405, method);
      assert.equal(errorCode(out), 'method_not_allowed');
      assert.equal(out.res.headers.get('allow'), 'GET, HEAD', method);
      assertStandardHeaders(out.res, method);
    }
  });

  test('HEAD on every GET route answers like GET, without a body', async () => {
    await register(server, 'api', '1.0.0', 'a', { url: 'h:1' });
    const doc = await (await server.fetch('/v1/openapi.json')).json();
    const getPaths = Object.entries(doc.paths)
      .filter(([, item]) => item.get)
      .map(([pattern]) => concrete(pattern));
    assert.ok(getPaths.length >= 5);
    for (const path of getPaths) {
      const get = await server.fetch(path);
      await get.arrayBuffer();
      const head = await server.fetch(path, { method: 'HEAD' });
      const bytes = await head.arrayBuffer();
      assert.equal(head.status, get.status, path);
      assert.equal(head.status, 200, path);
      assert.equal(bytes.byteLength, 0, path);
      assert.equal(head.headers.get('content-type'), get.headers.get('content-type'), path);
      assertStandardHeaders(head, `HEAD ${path}`);
    }
  });

  test('every route and method of the OpenAPI document answers with the standard headers', async () => {
    const doc = await (await server.fetch('/v1/openapi.json')).json();
    for (const [pattern, item] of Object.entries(doc.paths)) {
      const path = concrete(pattern);
      const allowed = Object.keys(item).map((m) => m.toUpperCase());
      if (allowed.includes('GET')) allowed.splice(allowed.indexOf('GET') + 1, 0, 'HEAD');
      for (const method of ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'PROPFIND']) {
        const res = await server.fetch(path, { method });
        await res.arrayBuffer();
        assertStandardHeaders(res, `${method} ${path}`);
        if (!allowed.includes(method)) {
          assert.equal(res.status, 405, `${method} ${path}`);
          assert.equal(res.headers.get('allow'), allowed.join(', '), `${method} ${path}`);
        }
      }
    }
  });
});

describe('request bodies', () => {
  const put = '/v1/services/api/1.0.0/instances/big';

  test('an announced oversized body is 413 with the standard headers', async () => {
    const out = await call(server, 'POST', '/v1/resolve', { raw: ' '.repeat(16 * 1024 + 1) });
    assert.equal(out.status, 413);
    assert.equal(errorCode(out), 'payload_too_large');
    assertStandardHeaders(out.res, '413');
  });

  test('a large chunked body without a token is refused before it is read', async () => {
    const total = 256 * 1024 * 1024;
    const out = await streamUntilAnswered('PUT', put, {}, total);
    assert.equal(out.status, 401, out.body);
    assert.equal(JSON.parse(out.body).error.code, 'unauthorized');
    assert.ok(out.headers['x-vasco-now'], 'x-vasco-now on the 401');
    assert.ok(
      out.sentWhenAnswered < total,
      `answered after ${out.sentWhenAnswered} of ${total} bytes: the body was not awaited`,
    );
  });

  test('a large chunked body with a token is 413 as soon as it passes the cap', async () => {
    const total = 256 * 1024 * 1024;
    const out = await streamUntilAnswered('PUT', put, server.auth(), total);
    assert.equal(out.status, 413, out.body);
    assert.equal(JSON.parse(out.body).error.code, 'payload_too_large');
    assert.ok(out.headers['x-vasco-now'], 'x-vasco-now on the 413');
    assert.ok(out.headers['x-vasco-kv-ops'], 'x-vasco-kv-ops on the 413');
    assert.ok(
      out.sentWhenAnswered < total,
      `answered after ${out.sentWhenAnswered} of ${total} bytes: the body was buffered whole`,
    );
    const after = await call(server, 'GET', '/v1/services/api');
    assert.ok(!after.body.instances.some((i) => i.id === 'big'), 'nothing stored');
  });

  test('a chunked body within the limit is read whole', async () => {
    const body = JSON.stringify({ url: 'h:2', meta: { pad: 'x'.repeat(200) } });
    const res = await new Promise((resolve, reject) => {
      const req = http.request({
        host: '127.0.0.1',
        port: server.port,
        method: 'PUT',
        path: '/v1/services/api/1.0.0/instances/chunked',
        headers: { 'content-type': 'application/json', ...server.auth() },
      });
      req.on('response', resolve);
      req.on('error', reject);
      for (let i = 0; i < body.length; i += 7) req.write(body.slice(i, i + 7));
      req.end();
    });
    let text = '';
    for await (const d of res) text += d;
    assert.equal(res.statusCode, 200, text);
    assert.equal(JSON.parse(text).meta.pad.length, 200);
  });
});

describe('configured tokens with whitespace', () => {
  let padded;
  before(async () => {
    padded = await startWrangler({ token: '  padded-secret \n', readToken: '\treader ' });
  });
  after(() => padded?.stop());

  test('a VASCO_TOKEN with surrounding whitespace authorizes its trimmed value', async () => {
    const headers = { authorization: 'Bearer padded-secret' };
    const out = await call(padded, 'PUT', '/v1/services/api/1.0.0/instances/a', {
      body: { url: 'h:1' },
      headers,
    });
    assert.equal(out.status, 200, JSON.stringify(out.body));
    const read = await call(padded, 'GET', '/v1/services', {
      headers: { authorization: 'Bearer reader' },
    });
    assert.equal(read.status, 200, JSON.stringify(read.body));
    const none = await call(padded, 'GET', '/v1/services');
    assert.equal(none.status, 401);
  });
});
