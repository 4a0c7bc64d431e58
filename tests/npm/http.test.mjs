// The npm package suite against a real local Worker (`wrangler dev`, local KV).
import { defineSuite } from './suite.mjs';
import { startWrangler } from '../support/wrangler.mjs';

let server;

defineSuite({
  name: 'http',
  async setup() {
    server = await startWrangler();
    // The original API reads these, as apps written for the original do.
    process.env.VASCO_URL = server.url;
    process.env.VASCO_TOKEN = server.token;
  },
  async teardown() {
    await server?.stop();
  },
  options: () => ({ url: server.url, token: server.token }),
  // Straight from the Worker, past the client's cache, and from the service's object
  // (`?consistent`): a default read is the KV snapshot, which may trail a write made on a lease
  // socket by up to its 1 s coalescing.
  async ids(name) {
    const res = await server.fetch(`/v1/services/${name}?consistent`);
    if (res.status !== 200) throw new Error(`GET /v1/services/${name}: ${res.status} ${await res.text()}`);
    return (await res.json()).instances.map((i) => i.id);
  },
  async remove(name, version, id) {
    const res = await server.fetch(`/v1/services/${name}/${version}/instances/${id}`, { method: 'DELETE', headers: server.auth() });
    await res.arrayBuffer();
  },
});
