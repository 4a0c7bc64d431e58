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
  // How far behind ours the Worker's clock may read: the time from its stamp to our receipt.
  async registryLag() {
    const res = await server.fetch('/health');
    const received = Date.now();
    await res.arrayBuffer();
    const stamped = Number(res.headers.get('x-vasco-now'));
    return Number.isFinite(stamped) ? Math.max(0, received - stamped) : 0;
  },
  async remove(name, version, id) {
    const res = await server.fetch(`/v1/services/${name}/${version}/instances/${id}`, { method: 'DELETE', headers: server.auth() });
    await res.arrayBuffer();
  },
});
