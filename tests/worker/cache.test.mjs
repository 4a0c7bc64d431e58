// The per-isolate listing cache (VASCO_CACHE_MS > 0): repeated lookups cost no KV operation,
// writes through the isolate drop it, `Cache-Control: no-cache` bypasses it, and liveness is
// still decided at every read.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { startWrangler } from '../support/wrangler.mjs';
import { call, eventually, ids, lookup, register } from './helpers.mjs';

let server;
before(async () => {
  server = await startWrangler({ cacheMs: 30_000 });
});
after(() => server?.stop());

test('a cached lookup costs 0 KV operations; a write drops the cache', async () => {
  await register(server, 'cached', '1.0.0', 'a', { url: 'h:1' });
  const first = await lookup(server, 'cached');
  assert.equal(first.ops, 1);
  const second = await lookup(server, 'cached');
  assert.equal(second.ops, 0, 'served from the isolate cache');
  assert.deepEqual(second.body, first.body);

  await register(server, 'cached', '1.0.0', 'b', { url: 'h:2' });
  const after = await lookup(server, 'cached');
  assert.equal(after.ops, 1, 'the write dropped the cache');
  assert.deepEqual(ids(after), ['a', 'b']);
});

test('Cache-Control: no-cache reads KV', async () => {
  await lookup(server, 'cached');
  const fresh = await call(server, 'GET', '/v1/services/cached', { headers: { 'cache-control': 'no-cache' } });
  assert.equal(fresh.status, 200);
  assert.equal(fresh.ops, 1);
});

test('resolve uses the cache too: 0 KV operations when every dependency is cached', async () => {
  await register(server, 'dep-x', '1.0.0', 'x', { url: 'h:1' });
  await register(server, 'dep-y', '1.0.0', 'y', { url: 'h:2' });
  const body = { dependencies: { 'dep-x': '1', 'dep-y': '^1' } };
  const cold = await call(server, 'POST', '/v1/resolve', { body });
  assert.equal(cold.ops, 2);
  const warm = await call(server, 'POST', '/v1/resolve', { body });
  assert.equal(warm.ops, 0);
  assert.deepEqual(warm.body, cold.body);
});

test('a heartbeat keeps registered_at when the listing is cached', async () => {
  const first = await register(server, 'keeper', '1.0.0', 'k', { url: 'h:1' });
  await lookup(server, 'keeper');
  await eventually(async () => Date.now() > first.body.registered_at + 20, { deadlineMs: 1_000 });
  const beat = await register(server, 'keeper', '1.0.0', 'k', { url: 'h:1' });
  assert.equal(beat.ops, 1);
  assert.equal(beat.body.registered_at, first.body.registered_at);
  assert.ok(beat.body.expires_at > first.body.expires_at);
});

test('expired instances leave cached listings too', async () => {
  const start = Date.now();
  await register(server, 'fleeting', '1.0.0', 'f', { url: 'h:1', ttl: 1 });
  assert.deepEqual(ids(await lookup(server, 'fleeting')), ['f']);
  await eventually(async () => {
    const out = await lookup(server, 'fleeting');
    return out.ops === 0 && out.body.instances.length === 0;
  }, { deadlineMs: 2_500 - (Date.now() - start), everyMs: 50, what: 'expired instance dropped from the cached listing' });
});
