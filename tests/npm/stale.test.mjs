// Stale-if-error: the Worker is stopped mid-test; the client keeps serving what it knew.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { startWrangler } from '../support/wrangler.mjs';
import { loadVasco, unique, waitFor } from './helpers.mjs';

let server;
let vasco;
let keepAlive;

before(async () => {
  keepAlive = setInterval(() => {}, 1000);
  vasco = await loadVasco();
  server = await startWrangler();
});

after(async () => {
  await server?.stop();
  clearInterval(keepAlive);
});

test('http: with the Worker gone, cached answers keep being served and nothing crashes', async () => {
  const client = vasco.connect({ url: server.url, token: server.token, cacheTtl: 200, timeout: 1000, handleSignals: false });
  const name = unique('sturdy');
  const registration = await client.register({ name, version: '1.4.0', url: '127.0.0.1:8101', ttl: 2 });
  const errors = [];
  registration.on('error', (err) => errors.push(err));

  // Warm the cache: a resolution, an instance list and a pick.
  assert.deepEqual(await client.findDependencies({ [name]: '^1' }), { [name]: '127.0.0.1:8101' });
  assert.equal((await client.instances(name)).length, 1);
  assert.equal((await client.pick(name)).url, '127.0.0.1:8101');
  const fresh = await client.resolve({ [name]: '^1' });
  assert.equal(fresh.stale, false);

  await server.stop();

  // Past the cache lifetime the registry is asked again, fails, and the last answer stands.
  const stale = await waitFor(
    async () => {
      const resolution = await client.resolve({ [name]: '^1' });
      return resolution.stale && resolution;
    },
    { timeout: 5000, message: 'a stale resolution' },
  );
  assert.equal(stale.resolved[name].instances[0].url, '127.0.0.1:8101');
  assert.deepEqual(await client.findDependencies({ [name]: '^1' }), { [name]: '127.0.0.1:8101' });
  assert.equal((await client.pick(name, { strategy: 'round-robin' })).url, '127.0.0.1:8101');
  await assert.rejects(client.pick(name, '^1'), { code: 'unavailable' }, 'a question never asked before has no answer');
  assert.deepEqual((await client.instances(name)).map((i) => i.url), ['127.0.0.1:8101']);

  // What was never known cannot be made up.
  await assert.rejects(client.findDependencies({ [unique('unknown')]: '1' }), (err) => {
    assert.equal(err.code, 'unavailable');
    assert.match(err.message, /nothing cached for/);
    return true;
  });

  // Heartbeats fail in the background: reported as 'error' events, retried, never thrown.
  await waitFor(() => errors.length > 0, { timeout: 5000, message: 'a heartbeat error event' });
  assert.equal(errors[0].code, 'unavailable');
  assert.equal(registration.active, true, 'still trying');

  await client.close({ deregister: false });
  await assert.rejects(client.instances(name), { code: 'closed' });
});
